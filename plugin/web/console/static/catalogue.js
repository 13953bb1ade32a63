// The definition editor, without reloads. Every button here also works as a plain form submit
// (name="intent"); this script only sends the same form to the page's JSON endpoints instead.
(() => {
  const form = document.getElementById("definition-form");
  if (!form) return;
  const conditionBox = document.getElementById("condition-editor");
  const impact = document.getElementById("impact");
  const actions = document.getElementById("actions");
  let timer = null;
  let sequence = 0;

  const post = async (url, extra) => {
    const body = new FormData(form);
    Object.entries(extra || {}).forEach(([key, value]) => body.set(key, value));
    const answer = await window.consoleFetch(url, { method: "POST", body });
    if (!answer.ok) {
      const problem = await answer.json().catch(() => ({}));
      throw new Error(problem.error || `the server answered ${answer.status}`);
    }
    return answer.json();
  };

  const showStatus = (result) => {
    const status = document.getElementById("condition-status");
    if (!status) return;
    status.className = "condition-status " + (result.valid ? "is-valid" : "is-invalid");
    status.textContent = "";
    if (result.valid) {
      status.append("✓ Means: ");
      const strong = document.createElement("strong");
      strong.textContent = result.description;
      status.append(strong);
    } else {
      status.textContent = "✕ " + (result.error || "invalid condition");
    }
  };

  // Live check of the condition as the admin types (debounced; only the latest answer counts).
  const check = (extra) => {
    const mine = ++sequence;
    return post(form.dataset.checkUrl, extra).then((result) => {
      if (mine !== sequence) return;
      if (result.html !== undefined) conditionBox.innerHTML = result.html;
      showStatus(result);
    });
  };
  conditionBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => check().catch(() => {}), 300);
  });

  const markStale = () => {
    const panel = impact.querySelector("[data-impact]");
    if (panel && !panel.classList.contains("stale")) {
      panel.classList.add("stale");
      const note = document.createElement("p");
      note.className = "flash flash-warning stale-note";
      note.textContent = "Changed since this preview: preview again to see the impact of this version.";
      panel.prepend(note);
    }
  };
  form.addEventListener("input", (event) => {
    if (!impact.contains(event.target)) markStale();
  });

  let rows = actions.querySelectorAll("[data-action-row]").length;
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || !form.contains(button)) return;
    if (button.dataset.condAction) {
      event.preventDefault();
      check({ cond_action: button.dataset.condAction }).catch(() => {});
      markStale();
    } else if (button.hasAttribute("data-add-action")) {
      event.preventDefault();
      const template = document.getElementById("action-template").innerHTML.replaceAll("__i__", String(rows++));
      actions.insertAdjacentHTML("beforeend", template);
      const added = actions.lastElementChild;
      added.querySelector(".kind-select").value = document.getElementById("add-kind").value;
      const none = document.getElementById("no-actions");
      if (none) none.remove();
      markStale();
    } else if (button.hasAttribute("data-remove-action")) {
      event.preventDefault();
      button.closest("[data-action-row]").remove();
      markStale();
    } else if (button.hasAttribute("data-preview")) {
      event.preventDefault();
      button.disabled = true;
      impact.classList.add("loading");
      post(form.dataset.previewUrl)
        .then((result) => { impact.innerHTML = result.html; })
        .catch((error) => { impact.textContent = "The preview failed: " + error.message; })
        .finally(() => {
          button.disabled = false;
          impact.classList.remove("loading");
          impact.scrollIntoView({ block: "nearest", behavior: "smooth" });
        });
    }
  });
})();
