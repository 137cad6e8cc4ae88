// Keyboard shortcuts for /label. Any element with data-key="x" is activated by pressing x:
// links and buttons are clicked, fields are focused. Keys typed inside a field are text;
// Escape leaves the field. Without JavaScript every control still works as a plain form.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLElement && target.matches("input, textarea, select");
  if (event.key === "Escape") {
    if (typing) target.blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const control = Array.from(document.querySelectorAll("[data-key]"))
    .find((el) => el.getAttribute("data-key") === event.key);
  if (!control) return;
  event.preventDefault();
  if (control.matches("input, textarea, select")) control.focus();
  else control.click();
});
