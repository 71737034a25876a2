// OpenSeadragon over the server's rendered Deep Zoom tiles: 2D deep zoom for colour pictures and
// single-channel images, and the fallback where WebGL2 is missing. The channel form changes the
// tiles' query, so they show what the multichannel viewer would.
import OpenSeadragon from 'openseadragon';
import { readImageData, readSettings, renderQuery, setStatus, watchForm } from './controls.js';
import { watchViews } from './orthogonal.js';

export function startDeepZoom(container, image, form, note = '') {
  container.replaceChildren();
  delete container.dataset.tilesLoaded; // a viewer this one replaces may have counted its own tiles
  container.dataset.viewer = 'deepzoom';
  setStatus(note);
  const tileSource = () => `${image.deepzoom_url}?${form ? renderQuery(readSettings(form, image)) : ''}`;
  const viewer = OpenSeadragon({
    element: container,
    prefixUrl: image.static_url + 'build/osd-images/',
    tileSources: tileSource(),
    showNavigator: true,
    showNavigationControl: false, // the page's own toolbar drives the zoom, as for the other viewer
    navigatorPosition: 'BOTTOM_RIGHT',
    maxZoomPixelRatio: 4,
    crossOriginPolicy: false,
    gestureSettingsMouse: { clickToZoom: false },
  });
  let loaded = 0;
  viewer.addHandler('tile-loaded', () => {
    loaded += 1;
    container.dataset.tilesLoaded = String(loaded);
  });
  viewer.addHandler('open', () => setStatus(note));
  viewer.addHandler('open-failed', (event) => setStatus(`The tiles could not be opened: ${event.message}`));
  if (form) {
    watchForm(form, () => {
      const center = viewer.viewport.getCenter();
      const zoom = viewer.viewport.getZoom();
      viewer.addOnceHandler('open', () => {
        viewer.viewport.zoomTo(zoom, null, true);
        viewer.viewport.panTo(center, true);
      });
      viewer.open(tileSource());
    });
  }
  document.getElementById('zoom-in')?.addEventListener('click', () => viewer.viewport.zoomBy(2));
  document.getElementById('zoom-out')?.addEventListener('click', () => viewer.viewport.zoomBy(0.5));
  document.getElementById('zoom-home')?.addEventListener('click', () => viewer.viewport.goHome());
  window.fairimageViewer = viewer;
  return viewer;
}

function main() {
  const container = document.getElementById('viewer');
  if (!container || container.dataset.viewer !== 'deepzoom') return;
  const image = readImageData();
  const form = document.getElementById('view-settings');
  watchViews(container, image, form);
  startDeepZoom(container, image, form);
}

main();
