// The console's only shared script: confirmation prompts on dangerous forms.
// Pages that need more (live previews) ship their own small script.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// fetch() with the page's CSRF token, for the few live parts of the console.
window.consoleFetch = (url, options = {}) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const headers = Object.assign({ "X-CSRFToken": token, "Accept": "application/json" }, options.headers || {});
  return fetch(url, Object.assign({}, options, { headers, credentials: "same-origin" }));
};
