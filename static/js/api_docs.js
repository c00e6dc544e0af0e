// The API reference: Redoc renders /api/v1/openapi.json into <main id="reference"> (no inline
// script: the page's CSP allows scripts from 'self' only).
(function () {
  "use strict";
  var main = document.getElementById("reference");
  if (!main || !window.Redoc) { return; }
  window.Redoc.init(main.getAttribute("data-spec-url"), {
    hideDownloadButtons: false,
    expandResponses: "200,201",
    pathInMiddlePanel: true,
    theme: {
      breakpoints: { small: "50rem", medium: "75rem", large: "105rem" },
      // Contrast of at least 4.5:1 everywhere (axe): Redoc's greys and tab colours are lighter.
      colors: {
        primary: { main: "#4f46e5" },
        text: { primary: "#171a26", secondary: "#565c72" },
        responses: {
          success: { tabTextColor: "#6ee7a8" },
          error: { tabTextColor: "#ff9b94" },
          redirect: { tabTextColor: "#ffd27a" },
          info: { tabTextColor: "#9cc8ff" }
        }
      },
      typography: {
        code: { color: "#b0213a", backgroundColor: "#f4f5f5" },
        fontFamily: "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
        headings: { fontFamily: "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif" }
      },
      sidebar: { width: "240px" }
    }
  }, main);

  // Code samples and tables may scroll sideways: each is a tab stop, so a keyboard scrolls it too.
  new MutationObserver(function () {
    main.querySelectorAll("pre:not([tabindex]), .redoc-markdown table:not([tabindex])").forEach(function (el) { el.setAttribute("tabindex", "0"); });
  }).observe(main, {childList: true, subtree: true});
})();
