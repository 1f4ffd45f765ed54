// weft hosted forms: keeps conditional fields and dynamic options current by asking the
// server, which decides with the same rules it checks the submission with. The page works
// without this script (everything is checked again on submit).
"use strict";
(function () {
  const form = document.querySelector("form[data-state]");
  if (!form) return;
  const summary = document.getElementById("summary");
  if (summary) summary.focus();

  function values() {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.name === "_csrf" || el.disabled) continue;
      if (el.type === "checkbox" && el.closest(".choices")) {
        if (!Array.isArray(out[el.name])) out[el.name] = [];
        if (el.checked) out[el.name].push(el.value);
      } else if (el.type === "checkbox") {
        out[el.name] = el.checked;
      } else if (el.type === "radio") {
        if (el.checked) out[el.name] = el.value;
      } else {
        out[el.name] = el.value;
      }
    }
    return out;
  }

  function fillOptions(name, answer) {
    const field = form.querySelector('[data-field="' + CSS.escape(name) + '"]');
    if (!field) return;
    const select = field.querySelector("select");
    let note = field.querySelector(".options-problem");
    if (answer.error) {
      if (!note) {
        note = document.createElement("p");
        note.className = "options-problem";
        note.setAttribute("role", "status");
        field.insertBefore(note, select || null);
      }
      note.textContent = answer.error;
      return;
    }
    if (note) note.remove();
    if (!select) return;
    const chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const o of answer.options || []) {
      const opt = new Option(o.label, o.value, false, o.value === chosen);
      select.add(opt);
    }
  }

  let timer = null;
  let inflight = null;
  async function refresh() {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    try {
      const res = await fetch(form.dataset.state, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-weft-csrf": form.elements["_csrf"].value,
        },
        body: JSON.stringify(values()),
        signal: inflight.signal,
      });
      if (!res.ok) return;
      const state = await res.json();
      for (const field of form.querySelectorAll("[data-field][data-conditional]")) {
        field.hidden = !(state.shown || []).includes(field.dataset.field);
      }
      for (const [name, answer] of Object.entries(state.options || {})) fillOptions(name, answer);
    } catch (_) {
      // Offline or aborted: the server checks everything on submit anyway.
    }
  }

  form.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  });
  if (form.querySelector("[data-conditional], .options-problem")) refresh();
})();
