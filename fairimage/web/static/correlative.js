// The correlative set page: the overlay picture follows the opacity and z sliders (the server composes it),
// and the address keeps the settings, so a reload or a shared link shows the same overlay. Without
// JavaScript the form is a plain GET form.
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
      const query = new URLSearchParams({ size: '1024', opacity });
      const z = form.querySelector('[name="z"]');
      if (z) query.set('z', z.value);
      picture.src = `/api/correlative-sets/${picture.dataset.set}/overlay?${query}`;
      history.replaceState(history.state, '', `${location.pathname}?${new URLSearchParams(new FormData(form))}`);
    }, 120);
  };
  form.addEventListener('input', update);
}
