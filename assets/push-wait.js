// The push-wait page: waits for the answer on the device by long polling
// (each request is held by the server until the answer or 25 s), then goes
// on. Without JavaScript the page's "continue" button does the same wait.
"use strict";
(function () {
  const status = document.getElementById("push-status");
  const form = document.querySelector("form[action^='/.portcullis/push?'], form[action='/.portcullis/push']");
  if (!status || !form) return;
  const csrf = form.querySelector("input[name=csrf]");
  async function poll() {
    for (;;) {
      let answer;
      try {
        const r = await fetch("/.portcullis/api/push/wait", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: "{}",
          credentials: "same-origin",
        });
        answer = await r.json();
      } catch (e) {
        await new Promise((ok) => setTimeout(ok, 2000));
        continue;
      }
      if (answer.next === "done" && answer.location) {
        window.location.assign(answer.location);
        return;
      }
      if (answer.next !== "push_wait") {
        // Denied, wrong number, expired: the page says which (its GET,
        // the answer is taken already); anything else, the form's POST.
        const outcome = { denied: "denied", wrong_number: "wrong-number", expired: "expired" }[answer.next];
        if (outcome) {
          const next = new URL(form.action, window.location.href);
          next.searchParams.set("outcome", outcome);
          window.location.assign(next.toString());
        } else if (csrf) {
          form.submit();
        }
        return;
      }
    }
  }
  poll();
})();
