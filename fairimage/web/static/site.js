// Copy buttons: <button class="copy" data-copy="ID"> copies the text of the element with that id.
document.addEventListener('click', async (event) => {
  const button = event.target.closest('button.copy');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const selection = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents(source);
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand('copy');
  }
  button.dataset.copied = '';
  const label = button.textContent;
  button.textContent = 'Copied';
  setTimeout(() => {
    delete button.dataset.copied;
    button.textContent = label;
  }, 1500);
});
