// Neuroglancer for volumes, offline: built from npm with webpack (its chunk workers and WebAssembly decoders
// need webpack's worker support) and served by fairimage itself. It reads the image's OME-Zarr from this
// server (zarr3 data source: every level, 3D chunks, the scales), shows orthogonal slices and a 3D view, and
// the image's labels as segmentation layers. The page puts the starting state (layers, contrast from the
// channels' windows) in #neuroglancer-state; the address keeps what the user changes, as Neuroglancer does.
import 'neuroglancer';
import { setupDefaultViewer } from 'neuroglancer/unstable/ui/default_viewer_setup.js';

const given = document.getElementById('neuroglancer-state');
if (given && !location.hash.startsWith('#!')) {
  history.replaceState(history.state, '', `#!${encodeURIComponent(given.textContent)}`);
}
window.fairimageViewer = setupDefaultViewer();
