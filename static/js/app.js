// ForceVue: the few lines of behaviour htmx does not cover. No inline script, no eval (CSP).
(function () {
  "use strict";

  var lastFocus = null;

  // A dialog swapped in by htmx opens as a modal; focus moves into it (the first [autofocus]
  // control, else the first button) and returns where it came from when it closes.
  function openDialogs(root) {
    var dialogs = root.querySelectorAll ? root.querySelectorAll("dialog[data-open]") : [];
    dialogs.forEach(function (dialog) {
      if (!dialog.open) {
        if (!lastFocus) { lastFocus = document.activeElement; }
        dialog.showModal();
        dialog.addEventListener("close", function () {
          // After the reveal's Done, the new key's row takes the focus (it is what changed).
          var reveal = dialog.querySelector("[data-new-row]");
          var row = reveal && document.getElementById(reveal.getAttribute("data-new-row"));
          dialog.remove();
          if (row) {
            var link = row.querySelector("a[href]");
            (link || row).focus();
            row.scrollIntoView({block: "nearest"});
          } else {
            returnFocus(lastFocus);
          }
          lastFocus = null;
        });
        var target = dialog.querySelector("[autofocus]") ||
          dialog.querySelector("input:not([type=hidden]), select, textarea, a[href], button");
        if (target) { target.focus(); }
      }
    });
  }

  // Back to the opener; if a list refresh re-rendered it while the dialog was open, to its
  // namesake by id; if that is gone, to what the redraw marked [autofocus]; else to <main>.
  function returnFocus(opener) {
    if (opener && !document.contains(opener) && opener.id) { opener = document.getElementById(opener.id); }
    if (opener && document.contains(opener)) { opener.focus(); return; }
    // The opener went with the redraw (a revoked key's button): what the redraw marked instead.
    var marked = document.querySelector("#main [autofocus]");
    if (marked) { marked.focus(); }
    if (document.activeElement === document.body) {
      var main = document.getElementById("main");
      if (main) { main.focus(); }
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-opens-dialog")) { lastFocus = elt; }
  });
  // Whatever was swapped (a dialog into #dialog-host, or a 422 re-render of one), open it once
  // htmx has settled it: htmx binds the new content's hx-post at settle, so a dialog opened at
  // the swap could be submitted by a quick click as a plain form (a full page load).
  document.addEventListener("htmx:afterSettle", function () { openDialogs(document); });
  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); });

  // Server says "closeDialog" (HX-Trigger) → close whatever dialog is open.
  document.body && document.body.addEventListener("closeDialog", closeAll);
  document.addEventListener("closeDialog", closeAll);
  function closeAll() {
    document.querySelectorAll("dialog[open]").forEach(function (d) { d.close(); });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[aria-disabled=true]")) { event.preventDefault(); return; }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog && dialog.open) {
        event.preventDefault();
        dialog.close();
      }
      return;
    }
    var copy = event.target.closest("[data-copy-target]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy-target"));
      if (!source) { return; }
      var status = document.getElementById(copy.getAttribute("data-copy-status") || "");
      var label = copy.querySelector("[data-copy-label]") || copy;
      var fallback = function () {
        selectText(source);
        announce(status, "Copying is not available here. The key is selected: press Ctrl-C (⌘-C on a Mac) to copy it.");
      };
      if (!navigator.clipboard || !navigator.clipboard.writeText) { fallback(); return; }
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        markCopied(copy);
        label.textContent = "Copied";
        announce(status, "Copied to the clipboard.");
        setTimeout(function () { label.textContent = "Copy"; }, 2500);
      }, fallback);
      return;
    }
    // The reveal's "You haven't copied this key" question.
    var reveal = event.target.closest("[data-reveal]");
    if (reveal && event.target.closest("[data-reveal-stay]")) {
      reveal.querySelector("[data-reveal-guard]").hidden = true;
      var again = reveal.querySelector("[data-copy-target]");
      if (again) { again.focus(); }
    } else if (reveal && event.target.closest("[data-reveal-discard]")) {
      reveal.setAttribute("data-copied", "discarded");
      reveal.closest("dialog").close();
    }
  });

  function announce(status, text) {
    if (!status) { return; }
    status.textContent = "";  // a repeated message is read again
    setTimeout(function () { status.textContent = text; }, 50);
  }

  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function markCopied(node) {
    var reveal = node.closest && node.closest("[data-reveal]");
    if (reveal) { reveal.setAttribute("data-copied", "yes"); }
  }

  // The one-time reveal: Escape before the key was copied asks first instead of closing it.
  function guardReveal(event) {
    var dialog = event.target.closest ? event.target.closest("dialog") : null;
    var reveal = dialog && dialog.querySelector("[data-reveal]");
    if (!reveal || reveal.hasAttribute("data-copied")) { return; }
    event.preventDefault();
    var guard = reveal.querySelector("[data-reveal-guard]");
    guard.hidden = false;
    setTimeout(function () { guard.querySelector("[data-reveal-stay]").focus(); }, 0);
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { guardReveal(event); }
  }, true);
  document.addEventListener("cancel", guardReveal, true);
  // Ctrl/⌘-C on the selected key counts as copied.
  document.addEventListener("copy", function () {
    var selection = window.getSelection();
    var node = selection && selection.anchorNode;
    if (node) { markCopied(node.nodeType === 1 ? node : node.parentElement); }
  });
  // After Done, the new row is highlighted for a moment.
  document.addEventListener("close", function (event) {
    var reveal = event.target.querySelector && event.target.querySelector("[data-new-row]");
    var row = reveal && document.getElementById(reveal.getAttribute("data-new-row"));
    if (!row) { return; }
    row.classList.add("is-new");
    setTimeout(function () { row.classList.remove("is-new"); }, 4000);
  }, true);

  // An htmx request that failed swaps nothing by design: say so, instead of a click that
  // silently does nothing. Inside an open dialog (the top layer) the message goes in it. The
  // server sends the words (fvapp/errors.py REQUEST_FAILURES, on <body data-request-failures>).
  function failure(key) {
    var failures = JSON.parse(document.body.getAttribute("data-request-failures") || "{}");
    return failures[key] || failures.other;
  }

  function showFailure(text) {
    var dialog = document.querySelector("dialog[open]");
    var host = dialog ? (dialog.querySelector(".modal-body") || dialog) : document.getElementById("main");
    if (!host) { return; }
    var box = host.querySelector(":scope > .request-failure");
    if (!box) {
      box = document.createElement("div");
      box.className = "alert alert-error request-failure";
      box.setAttribute("role", "alert");
      host.insertBefore(box, host.firstChild);
    }
    box.textContent = text + " ";
    var reload = document.createElement("button");
    reload.type = "button";
    reload.className = "btn btn-sm";
    reload.textContent = "Reload";
    reload.addEventListener("click", function () { window.location.reload(); });
    box.appendChild(reload);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    showFailure(failure(String(status)));
  });
  document.addEventListener("htmx:sendError", function () {
    showFailure(failure("offline"));
  });

  // A field's live count, "n/max" ([data-count-for] names the field).
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!field.id) { return; }
    var count = document.querySelector('[data-count-for="' + field.id + '"]');
    if (count) { count.textContent = field.value.length + "/" + field.getAttribute("data-count"); }
  });

  // The usage chart: the arrow keys move between days (one tab stop), and the day under the
  // pointer or the focus is written out below the chart.
  function showDay(day) {
    var chart = day.closest("figure");
    var readout = chart && chart.querySelector("[data-usage-readout]");
    if (readout) { readout.textContent = day.getAttribute("aria-label"); }
  }
  document.addEventListener("focusin", function (event) {
    var day = event.target.closest && event.target.closest(".usage-day");
    if (day) { showDay(day); }
  });
  document.addEventListener("mouseover", function (event) {
    var day = event.target.closest && event.target.closest(".usage-day");
    if (day) { showDay(day); }
  });
  document.addEventListener("keydown", function (event) {
    var day = event.target.closest && event.target.closest(".usage-day");
    if (!day) { return; }
    var days = Array.prototype.slice.call(day.parentNode.querySelectorAll(".usage-day"));
    var index = days.indexOf(day);
    var next = {ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: days.length - 1}[event.key];
    if (next === undefined || !days[next]) { return; }
    event.preventDefault();
    day.setAttribute("tabindex", "-1");
    days[next].setAttribute("tabindex", "0");
    days[next].focus();
  });

  // On a phone the settings sections are one scrolling row: the current one is scrolled into it.
  document.addEventListener("DOMContentLoaded", function () {
    var current = document.querySelector(".settings-nav [aria-current=page]");
    var nav = current && current.parentNode;
    if (nav && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  });

  // Buttons that are only useful with JavaScript (Copy) are hidden until it runs.
  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
  });
})();
