// The templates page, live: the email preview follows what is typed and the customer picked.
// Without this script the page still works with its "Refresh preview" and "Show" buttons.
(() => {
  document.querySelectorAll("[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });

  const form = document.getElementById("template-form");
  if (!form) return;
  const target = document.getElementById("template-preview");
  const state = document.getElementById("preview-state");
  const picker = document.getElementById("preview-customer");
  const search = document.getElementById("customer-search");
  let timer = null;
  let sequence = 0;

  const refresh = () => {
    const mine = ++sequence;
    state.textContent = "updating…";
    window.consoleFetch(form.dataset.previewUrl, { method: "POST", body: new FormData(form) })
      .then((answer) => answer.ok ? answer.json() : Promise.reject(new Error(`the server answered ${answer.status}`)))
      .then((result) => {
        if (mine !== sequence) return;
        target.innerHTML = result.html;
        state.textContent = "up to date";
      })
      .catch((error) => { if (mine === sequence) state.textContent = "preview failed: " + error.message; });
  };
  const soon = (wait) => { clearTimeout(timer); timer = setTimeout(refresh, wait); };

  form.addEventListener("input", (event) => {
    if (event.target === search) return;
    soon(350);
  });
  picker.addEventListener("change", () => soon(0));
  form.addEventListener("click", (event) => {
    if (event.target.closest("[data-refresh]")) { event.preventDefault(); soon(0); }
  });

  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const url = form.dataset.searchUrl + "?q=" + encodeURIComponent(search.value);
      window.consoleFetch(url).then((answer) => answer.json()).then((result) => {
        if (!result.customers || !result.customers.length) { state.textContent = "no customer matches"; return; }
        picker.replaceChildren(...result.customers.map((c) => new Option(c.label, c.id)));
        soon(0);
      });
    }, 300);
  });
  search.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
})();
