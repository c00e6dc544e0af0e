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
      colors: { primary: { main: "#4f46e5" } },
      typography: {
        fontFamily: "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
        headings: { fontFamily: "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif" }
      },
      sidebar: { width: "240px" }
    }
  }, main);
})();
