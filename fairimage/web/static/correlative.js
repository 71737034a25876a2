// The correlative set page: the overlay picture follows the opacity and z sliders and the region shown (the
// server composes it), a click zooms in 2x around the point clicked (shift-click out), and the address keeps
// the settings, so a reload or a shared link shows the same overlay. Without JavaScript the form is a
// plain GET form.
const form = document.getElementById('overlay-settings');
const picture = document.getElementById('overlay');
if (form && picture) {
  let pending;
  const update = () => {
    for (const output of form.querySelectorAll('output[for]')) {
      output.value = document.getElementById(output.htmlFor).value;
    }
    clearTimeout(pending);
    pending = setTimeout(() => {
      const opacity = [...form.querySelectorAll('input[data-image]')]
        .map((input) => `${input.dataset.image}:${Number(input.value) / 100}`)
        .join(',');
      const query = new URLSearchParams({ size: '1024', opacity, region: region.value });
      const z = form.querySelector('[name="z"]');
      if (z) query.set('z', z.value);
      picture.src = `/api/correlative-sets/${picture.dataset.set}/overlay?${query}`;
      history.replaceState(history.state, '', `${location.pathname}?${new URLSearchParams(new FormData(form))}`);
    }, 120);
  };
  form.addEventListener('input', update);
  const region = form.querySelector('[name="region"]');
  const [, , fullWidth, fullHeight] = picture.dataset.whole.split(',').map(Number);
  // Zoom by ``factor`` around the reference pixel (x, y), within the reference.
  const zoom = (x, y, factor) => {
    const [, , width, height] = region.value.split(',').map(Number);
    const w = Math.max(16, Math.min(fullWidth, Math.round(width * factor)));
    const h = Math.max(16, Math.min(fullHeight, Math.round(height * factor)));
    const left = Math.max(0, Math.min(fullWidth - w, Math.round(x - w / 2)));
    const top = Math.max(0, Math.min(fullHeight - h, Math.round(y - h / 2)));
    region.value = `${left},${top},${w},${h}`;
    update();
  };
  picture.addEventListener('click', (event) => {
    const [left, top, width, height] = region.value.split(',').map(Number);
    const box = picture.getBoundingClientRect();
    const x = left + ((event.clientX - box.left) / box.width) * width;
    const y = top + ((event.clientY - box.top) / box.height) * height;
    zoom(x, y, event.shiftKey ? 2 : 0.5);
  });
  document.getElementById('whole').addEventListener('click', () => {
    region.value = picture.dataset.whole;
    update();
  });
}
