// Label overlays: each OME-NGFF label of the image (labels/NAME, served through the same /zarr route and
// access check as the image) drawn semi-transparently over it. A deck.gl TileLayer picks the label's
// pyramid level that matches the zoom and reads only the visible chunks of it, as viv's own
// MultiscaleImageLayer does for the image; each tile's object ids become colours here, id 0 transparent.
import { COORDINATE_SYSTEM } from '@deck.gl/core';
import { TileLayer } from '@deck.gl/geo-layers';
import { BitmapLayer } from '@deck.gl/layers';
import { getImageSize, loadOmeZarrFromStore, SIGNAL_ABORTED } from '@vivjs/loaders';
import { planesPerLevel } from './planes.js';

// Object ids are not intensities: no interpolation and no mipmaps, which would blend neighbouring ids'
// colours into ones no object has.
const SAMPLER = { minFilter: 'nearest', magFilter: 'nearest', mipmapFilter: 'none' };

function pack([red, green, blue, alpha = 255]) {
  return (red | (green << 8) | (blue << 16) | (alpha << 24)) >>> 0; // RGBA bytes of a little-endian Uint32
}

// The colour of an id that image-label gives none: the golden-angle hue walk fairimage writes into
// image-label (services/labels), so an id looks the same whether or not its colour was stored.
function walkColour(id) {
  const hue = ((id * 0.618033988749895) % 1 + 1) % 1;
  const sector = Math.floor(hue * 6);
  const f = hue * 6 - sector;
  const [v, p, q, t] = [1, 0.25, 1 - 0.75 * f, 1 - 0.75 * (1 - f)];
  const rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][sector % 6];
  return pack([...rgb.map((channel) => Math.round(channel * 255)), 255]);
}

// OME-NGFF image-label "colors": [{"label-value": 1, "rgba": [r, g, b, a]}, ...]
function colourTable(imageLabel) {
  const table = new Map([[0, 0]]);
  for (const entry of imageLabel?.colors ?? []) {
    const rgba = entry?.rgba;
    if (Number.isInteger(entry?.['label-value']) && Array.isArray(rgba) && rgba.length >= 3) {
      table.set(entry['label-value'], pack(rgba));
    }
  }
  return (id) => {
    const key = Number(id); // 64-bit labels arrive as BigInt
    let colour = table.get(key);
    if (colour === undefined) {
      colour = walkColour(key);
      table.set(key, colour);
    }
    return colour;
  };
}

function paint(ids, width, height, colourOf) {
  const pixels = new Uint32Array(width * height);
  let last = ids.length ? ids[0] : 0;
  let colour = colourOf(last);
  for (let i = 0; i < pixels.length; i += 1) {
    const id = ids[i];
    if (id !== last) {
      last = id;
      colour = colourOf(id);
    }
    pixels[i] = colour;
  }
  return new ImageData(new Uint8ClampedArray(pixels.buffer), width, height);
}

// One label, opened: its pyramid (viv's ZarrPixelSource per level) and its id -> colour table.
async function openLabel(store) {
  const { data, metadata } = await loadOmeZarrFromStore(store);
  return { pyramid: planesPerLevel(data), colourOf: colourTable(metadata['image-label']) };
}

// The label's plane for the image's z and t (a label has all the image's axes except the channels).
function planeOf(pyramid, settings) {
  const axes = pyramid[0].labels;
  const selection = {};
  if (axes.includes('z')) selection.z = settings.z;
  if (axes.includes('t')) selection.t = settings.t;
  return selection;
}

function labelLayer({ name, label, settings, opacity, onLoad, onError }) {
  const { pyramid, colourOf } = label;
  const base = pyramid[0];
  const { tileSize } = base;
  const { width, height } = getImageSize(base);
  const selection = planeOf(pyramid, settings);
  const getTileData = async ({ index: { x, y, z }, signal }) => {
    try {
      const tile = await pyramid[Math.round(-z)].getTile({ x, y, selection, signal });
      return paint(tile.data, tile.width, tile.height, colourOf);
    } catch (error) {
      if (error === SIGNAL_ABORTED || signal?.aborted) return null;
      throw error;
    }
  };
  return new TileLayer({
    id: `label-${name}`,
    coordinateSystem: COORDINATE_SYSTEM.CARTESIAN,
    getTileData,
    tileSize,
    extent: [0, 0, width, height],
    // Level r of the pyramid is zoom -r, as in viv's MultiscaleImageLayer, so both pick the same level.
    minZoom: -(pyramid.length - 1),
    maxZoom: 0,
    opacity,
    // Semi-transparent tiles must not be drawn over their parent's placeholder (that doubles the colour).
    refinementStrategy: 'no-overlap',
    updateTriggers: { getTileData: [selection.z, selection.t] },
    onViewportLoad: onLoad,
    onTileError: onError,
    renderSubLayers: (props) => {
      const { data, tile } = props;
      if (!data) return null;
      const { left, top, right, bottom } = tile.bbox;
      // An edge tile is narrower than tileSize: it ends where the image does.
      const bounds = [left, data.height < tileSize ? height : bottom, data.width < tileSize ? width : right, top];
      return new BitmapLayer(props, { id: `${props.id}-bitmap`, data: null, image: data, bounds, textureParameters: SAMPLER });
    },
  });
}

// The image's labels (`labels`: [{name, ome_zarr_url}] from the page), each opened the first time it is
// switched on, so labels left off cost no request. `layers` gives the overlays to draw for the form's
// state; `onOpen` asks for a redraw once a label switched on can be drawn.
export class LabelOverlays {
  constructor(labels, { storeFor, onOpen, onLoad, onError }) {
    this.urls = new Map(labels.map((label) => [label.name, label.ome_zarr_url]));
    this.opened = new Map(); // name -> a promise while opening, then the label, or null if it failed
    Object.assign(this, { storeFor, onOpen, onLoad, onError });
  }

  layers(settings, { shown, opacity }) {
    const layers = [];
    for (const name of shown) {
      const label = this.opened.get(name);
      if (label === undefined) this.open(name);
      else if (label && !(label instanceof Promise)) {
        const onError = (error) => this.onError(`The label ${name} could not be drawn: ${error.message}`);
        layers.push(labelLayer({ name, label, settings, opacity, onLoad: this.onLoad, onError }));
      }
    }
    return layers;
  }

  open(name) {
    const url = this.urls.get(name);
    if (!url) return;
    const opening = openLabel(this.storeFor(url)).then(
      (label) => {
        this.opened.set(name, label);
        this.onOpen();
      },
      (error) => {
        this.opened.set(name, null);
        this.onError(`The label ${name} could not be opened: ${error.message}`);
      },
    );
    this.opened.set(name, opening);
  }
}
