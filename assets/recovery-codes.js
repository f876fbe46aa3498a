// The recovery codes page: its Copy button (hidden without JavaScript; the
// page's download link works either way). The clipboard API first; where a
// browser refuses it, the codes are selected for the user to copy.
"use strict";
(function () {
  const list = document.getElementById("recovery-codes");
  const button = document.getElementById("copy-codes");
  const status = document.getElementById("copy-status");
  if (!list || !button || !status) return;
  const codes = Array.from(list.querySelectorAll("code"), (c) => c.textContent.trim());
  const text = codes.join("\n") + "\n";
  function say(message) {
    status.textContent = message || "";
  }
  function select() {
    const range = document.createRange();
    range.selectNodeContents(list);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say(button.dataset.selected);
  }
  button.addEventListener("click", function () {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(() => say(button.dataset.copied), select);
    } else {
      select();
    }
  });
  button.hidden = false;
})();
