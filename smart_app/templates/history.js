// filters apply as soon as a box is ticked (the form also works without JavaScript).
// A file, not an inline script: the page's Content-Security-Policy allows scripts of
// this origin only (script-src 'self', CSP Level 3).
document.getElementById("filters").addEventListener("change", function (e) {
  e.currentTarget.submit();
});
