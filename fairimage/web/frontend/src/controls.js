// The channel / z / t form shared by both viewers: reading it, and turning it into render query text.
// The form is server-rendered (labels, keyboard, works as a plain GET form without JavaScript); the
// viewers only listen to it.

export function readImageData() {
  const node = document.getElementById('image-data');
  return JSON.parse(node.textContent);
}

export function readSettings(form, image) {
  const channels = image.channels.map((channel, index) => ({
    index,
    visible: form.querySelector(`[name="c"][value="${index}"]`)?.checked ?? true,
    color: (form.querySelector(`[name="color${index}"]`)?.value ?? '#ffffff').replace('#', ''),
    start: Number(form.querySelector(`[name="start${index}"]`)?.value ?? channel.start),
    end: Number(form.querySelector(`[name="end${index}"]`)?.value ?? channel.end),
  }));
  const z = Number(form.querySelector('[name="z"]')?.value ?? 0);
  const t = Number(form.querySelector('[name="t"]')?.value ?? 0);
  return { channels, z, t };
}

// The label overlays the form asks for: the names switched on, and their opacity (0-1).
export function readOverlays(form) {
  const shown = [...form.querySelectorAll('[name="labels"]:checked')].map((box) => box.value);
  const percent = Number(form.querySelector('[name="label_opacity"]')?.value ?? 50);
  return { shown, opacity: Math.min(100, Math.max(0, Number.isFinite(percent) ? percent : 50)) / 100 };
}

// The render API's query for these settings: c=0,2&colors=FF0000,00FF00&window=0:100,5:900&z=3&t=0
export function renderQuery(settings) {
  const shown = settings.channels.filter((channel) => channel.visible);
  const params = new URLSearchParams();
  params.set('z', String(settings.z));
  params.set('t', String(settings.t));
  params.set('c', shown.map((channel) => channel.index).join(','));
  if (shown.length) {
    params.set('colors', shown.map((channel) => channel.color.toUpperCase()).join(','));
    params.set('window', shown.map((channel) => `${channel.start}:${channel.end}`).join(','));
  }
  return params.toString();
}

export function hexToRgb(hex) {
  const value = parseInt(hex, 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

// Keeps the address saying what the form shows, in the words the form itself sends without JavaScript
// (c=0&color0=...&labels=nuclei&label_opacity=50), so a reload or a shared link opens the same view.
function rememberInAddress(form) {
  const query = new URLSearchParams(new FormData(form)).toString();
  history.replaceState(history.state, '', `${location.pathname}?${query}${location.hash}`);
}

// Calls `onChange` on every edit, at most once per animation frame; shows the slider values and keeps
// them in the address.
export function watchForm(form, onChange) {
  let pending = false;
  const changed = () => {
    for (const output of form.querySelectorAll('output[for]')) {
      const input = document.getElementById(output.htmlFor);
      if (input) output.value = input.value;
    }
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      rememberInAddress(form);
      onChange();
    });
  };
  form.addEventListener('input', changed);
  form.addEventListener('change', changed);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    changed();
  });
}

export function setStatus(text) {
  const status = document.getElementById('viewer-status');
  if (status) status.textContent = text;
}
