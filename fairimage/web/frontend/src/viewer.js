// The multichannel viewer: viv reads the image's OME-Zarr from this server (only the visible tiles of the
// pyramid level that matches the zoom) and composes the channels on the GPU. Channel toggles, colours,
// contrast limits and the z / t sliders come from the server-rendered form, and so do the label overlays
// (labels.js) drawn over the image. Without WebGL2, or for an image viv cannot read, the page falls back
// to OpenSeadragon over rendered tiles.
import { Deck, OrthographicView } from '@deck.gl/core';
import { ColorPaletteExtension } from '@vivjs/extensions';
import { MultiscaleImageLayer } from '@vivjs/layers';
import { loadOmeZarrFromStore } from '@vivjs/loaders';
import FetchStore from '@zarrita/storage/fetch';
import { hexToRgb, readImageData, readOverlays, readSettings, setStatus, watchForm } from './controls.js';
import { startDeepZoom } from './deepzoom.js';
import { LabelOverlays } from './labels.js';
import { watchViews } from './orthogonal.js';
import { planesPerLevel } from './planes.js';

const MAX_CHANNELS = 6; // what viv's shaders compose at once
const FIRST_DRAW_MS = 15000; // a WebGL that draws nothing in this long is not working: show rendered tiles

// fairimage stores OME-Zarr 0.5 (zarr v3) only; zarrita would first look for zarr v2's metadata files,
// so those are answered "absent" here instead of costing two requests that always 404.
class ZarrV3Store {
  constructor(url) {
    this.store = new FetchStore(url);
  }

  get(key, options) {
    if (/\/\.z(attrs|group|array)$/.test(key)) return Promise.resolve(undefined);
    return this.store.get(key, options);
  }

  getRange(key, range, options) {
    return this.store.getRange(key, range, options);
  }
}

function hasWebGL2() {
  try {
    return Boolean(document.createElement('canvas').getContext('webgl2'));
  } catch {
    return false;
  }
}

// Returns its argument, or the equal value it returned last time. viv reads every tile again when
// `selections` is a new array, even an equal one: keeping the old one while the planes shown stay the same
// lets a colour, contrast or label change redraw without reading anything.
function keepingEqual() {
  let kept = { key: undefined, value: undefined };
  return (value) => {
    const key = JSON.stringify(value);
    if (key !== kept.key) kept = { key, value };
    return kept.value;
  };
}

function selectionsOf(channels, settings, axes) {
  return channels.map((channel) => {
    const chosen = {};
    if (axes.includes('c')) chosen.c = channel.index;
    if (axes.includes('z')) chosen.z = settings.z;
    if (axes.includes('t')) chosen.t = settings.t;
    return chosen;
  });
}

function layerProps(settings, axes, sameSelections) {
  const channels = settings.channels.slice(0, MAX_CHANNELS);
  return {
    selections: sameSelections(selectionsOf(channels, settings, axes)),
    colors: channels.map((channel) => hexToRgb(channel.color)),
    contrastLimits: channels.map((channel) => [channel.start, channel.end]),
    channelsVisible: channels.map((channel) => channel.visible),
  };
}

const NICE = [1, 2, 5];
const UNITS = { micrometer: 'µm', nanometer: 'nm', millimeter: 'mm', centimeter: 'cm', meter: 'm' };

// A scale bar of about 120 screen pixels, its length rounded to 1, 2 or 5 times a power of ten.
function drawScaleBar(bar, zoom, pixelSize) {
  if (!bar || !pixelSize || !pixelSize.unit) return;
  const screenPerPixel = 2 ** zoom;
  const target = (120 / screenPerPixel) * pixelSize.size;
  const power = 10 ** Math.floor(Math.log10(target));
  const step = NICE.filter((n) => n * power <= target).pop() ?? 1;
  const length = step * power;
  bar.querySelector('.scale-bar-line').style.width = `${(length / pixelSize.size) * screenPerPixel}px`;
  const unit = UNITS[pixelSize.unit] ?? pixelSize.unit;
  bar.querySelector('.scale-bar-label').textContent = `${Number(length.toPrecision(3))} ${unit}`;
  bar.hidden = false;
}

async function startViv(container, image, form, fallBack) {
  setStatus('Loading the OME-Zarr pyramid…');
  const { data: levels } = await loadOmeZarrFromStore(new ZarrV3Store(image.ome_zarr_url));
  const data = planesPerLevel(levels);
  const axes = data[0].labels; // viv's name for the axis names, not OME-NGFF labels
  const [height, width] = data[0].shape.slice(-2);
  const canvasHolder = container.querySelector('.viewer-canvas') ?? container;
  const box = canvasHolder.getBoundingClientRect();
  const fit = Math.log2(Math.min(box.width / width, box.height / height));
  const home = { target: [width / 2, height / 2, 0], zoom: fit, minZoom: fit - 2, maxZoom: 5 };
  let viewState = { ...home };
  let tilesLoaded = 0;
  const bar = document.getElementById('scale-bar');
  const pixelSize = image.physical_sizes?.x;
  // Once the page has fallen back to rendered tiles, viv's late callbacks (a viewport that finishes
  // loading, a zoom button) must not touch the page any more.
  let stopped = false;
  const stop = (deck, note) => {
    stopped = true;
    fallBack(deck, note);
  };

  const extensions = [new ColorPaletteExtension()];
  const sameSelections = keepingEqual();
  const makeLayer = (settings) =>
    new MultiscaleImageLayer({
      id: 'image',
      loader: data,
      dtype: data[0].dtype,
      extensions,
      onViewportLoad: () => {
        if (stopped) return;
        tilesLoaded += 1;
        container.dataset.tilesLoaded = String(tilesLoaded);
        setStatus('');
      },
      ...layerProps(settings, axes, sameSelections),
    });

  let labelTilesLoaded = 0;
  const overlays = new LabelOverlays(image.labels ?? [], {
    storeFor: (url) => new ZarrV3Store(url),
    onOpen: () => redraw(),
    onLoad: () => {
      if (stopped) return;
      labelTilesLoaded += 1;
      container.dataset.labelTilesLoaded = String(labelTilesLoaded);
    },
    onError: (message) => setStatus(message),
  });
  const layers = () => {
    const settings = readSettings(form, image);
    return [makeLayer(settings), ...overlays.layers(settings, readOverlays(form))];
  };
  // Called on every edit of the form, and when a label switched on has been opened (after `deck` exists).
  const redraw = () => {
    if (!stopped) deck.setProps({ layers: layers() });
  };

  const deck = new Deck({
    parent: canvasHolder,
    views: [new OrthographicView({ id: 'ortho', controller: { keyboard: true, doubleClickZoom: true } })],
    viewState,
    layers: layers(),
    onViewStateChange: ({ viewState: next }) => {
      viewState = next;
      deck.setProps({ viewState });
      drawScaleBar(bar, viewState.zoom, pixelSize);
      return next;
    },
    onError: (error) => stop(deck, `The multichannel viewer failed (${error.message}); showing rendered tiles instead.`),
  });
  const canvas = deck.getCanvas?.() ?? canvasHolder.querySelector('canvas');
  // A context that exists can still fail (no hardware acceleration, a GPU reset): say so and show the
  // rendered tiles rather than a black canvas.
  canvas?.addEventListener('webglcontextlost', () =>
    stop(deck, 'This browser lost its WebGL context (no working graphics acceleration?), so the multichannel viewer is off; showing rendered tiles instead.'),
  );
  setTimeout(() => {
    if (tilesLoaded === 0 && !stopped) {
      stop(deck, 'The multichannel viewer drew nothing (this browser\'s WebGL may not work); showing rendered tiles instead.');
    }
  }, FIRST_DRAW_MS);
  if (canvas) {
    canvas.tabIndex = 0;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `${image.name}; drag to pan, scroll or + / - to zoom, arrow keys to move`);
  }
  drawScaleBar(bar, viewState.zoom, pixelSize);
  watchForm(form, redraw);

  const zoomBy = (delta) => {
    if (stopped) return;
    viewState = { ...viewState, zoom: Math.min(home.maxZoom, Math.max(home.minZoom, viewState.zoom + delta)) };
    deck.setProps({ viewState });
    drawScaleBar(bar, viewState.zoom, pixelSize);
  };
  document.getElementById('zoom-in')?.addEventListener('click', () => zoomBy(1));
  document.getElementById('zoom-out')?.addEventListener('click', () => zoomBy(-1));
  document.getElementById('zoom-home')?.addEventListener('click', () => {
    if (stopped) return;
    viewState = { ...home };
    deck.setProps({ viewState });
    drawScaleBar(bar, viewState.zoom, pixelSize);
  });
  container.dataset.viewer = 'viv';
  if (image.channels.length > MAX_CHANNELS) {
    setStatus(`This viewer composes ${MAX_CHANNELS} channels at once: the first ${MAX_CHANNELS} are shown.`);
  }
  window.fairimageViewer = deck;
}

async function main() {
  const container = document.getElementById('viewer');
  if (!container || container.dataset.viewer !== 'viv') return;
  const image = readImageData();
  const form = document.getElementById('view-settings');
  watchViews(container, image, form);
  if (!hasWebGL2()) {
    startDeepZoom(container, image, form, 'This browser has no WebGL2, so the multichannel viewer is off: showing rendered tiles instead.');
    return;
  }
  let fell = false;
  const fallBack = (deck, note) => {
    if (fell) return;
    fell = true;
    console.warn(note);
    deck?.finalize();
    window.fairimageViewer = undefined;
    startDeepZoom(container, image, form, note);
  };
  try {
    await startViv(container, image, form, fallBack);
  } catch (error) {
    console.error(error);
    fallBack(null, `The multichannel viewer could not open this image (${error.message}); showing rendered tiles.`);
  }
}

main();
