// formtool's page works without this file; it only adds live progress and keeps a
// send button from being pressed twice. No inline script anywhere (CSP).
"use strict";
(function () {
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("button[data-once]");
    if (button) {
      if (button.dataset.pressed) { event.preventDefault(); return; }
      button.dataset.pressed = "1";
      button.setAttribute("aria-disabled", "true");
    }
  });

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.value).then(function () {
        button.textContent = "Kopiert";
      });
    });
  });

  var box = document.getElementById("aufgabe");
  if (!box) { return; }
  var id = box.getAttribute("data-job");
  function text(node, value) { node.textContent = value; }
  function list(node, lines) {
    if (!node) { return; }
    node.replaceChildren.apply(node, lines.map(function (line) {
      var item = document.createElement("li"); text(item, line); return item;
    }));
  }
  function poll() {
    fetch("/aufgaben/" + encodeURIComponent(id) + ".json", {credentials: "same-origin"})
      .then(function (answer) { return answer.json(); })
      .then(function (state) {
        if (state.done) { window.location.reload(); return; }
        var sent = state.counts["gesendet"] || 0;
        var words = "Läuft … ";
        if (state.total) { words += sent + " von " + state.total + " gesendet."; }
        Object.keys(state.counts).forEach(function (key) {
          if (key !== "gesendet") { words += " " + state.counts[key] + " " + key + "."; }
        });
        if (state.waiting) {
          words += " Warten wegen der Grenze des Anbieters: noch " + state.waiting + " s.";
        }
        text(document.getElementById("stand"), words);
        var bar = document.getElementById("fortschritt");
        if (bar) { bar.value = sent; text(bar, sent + " von " + state.total); }
        list(document.getElementById("verlauf"), state.lines);
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  if (!box.querySelector("#ergebnis li")) { window.setTimeout(poll, 1000); }
})();
