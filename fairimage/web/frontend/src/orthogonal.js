// The xy / xz / yz toggle of a 3D image's page. xz and yz are the server's pictures of the plane through
// every z at a row or column (/api/images/ID/orthogonal: z downwards, stretched to the voxels' depth, from
// the pyramid level that has enough pixels), shown over the viewer, with the same channels, colours and
// contrast; xy is the viewer itself.
import { readSettings, renderQuery, watchForm } from './controls.js';

export function watchViews(container, image, form) {
  const slider = form?.querySelector('#at-slider');
  if (!slider) return; // a 2D image has no other view
  const wrapper = slider.closest('.slider');
  const label = form.querySelector('#at-label');
  const picture = document.createElement('img');
  picture.className = 'orthogonal-picture';
  picture.hidden = true;
  container.closest('.viewer-frame').append(picture);
  let loaded = 0;
  picture.addEventListener('load', () => {
    loaded += 1;
    container.dataset.orthogonalLoaded = String(loaded);
  });
  let shown = form.querySelector('[name="view"]:checked')?.value ?? 'xy';
  const update = () => {
    const view = form.querySelector('[name="view"]:checked')?.value ?? 'xy';
    if (view !== shown && view !== 'xy') {
      // A new cut axis: its slider runs over rows (xz) or columns (yz), from the middle one.
      const count = Number(view === 'xz' ? slider.dataset.rows : slider.dataset.columns);
      slider.max = String(count - 1);
      slider.value = String(Math.floor(count / 2));
      label.textContent = view === 'xz' ? 'y' : 'x';
      wrapper.querySelector('output').value = slider.value;
    }
    shown = view;
    wrapper.hidden = view === 'xy';
    picture.hidden = view === 'xy';
    container.dataset.view = view;
    if (view === 'xy') return;
    const query = renderQuery(readSettings(form, image));
    const source = `/api/images/${image.id}/orthogonal?view=${view}&at=${slider.value}&${query}&size=1024`;
    if (picture.getAttribute('src') !== source) picture.src = source;
    picture.alt = `${image.name}: the ${view} plane at ${label.textContent} ${slider.value}, through every z`;
  };
  watchForm(form, update);
  update();
}
