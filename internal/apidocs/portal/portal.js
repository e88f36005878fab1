// The API docs portal: Swagger UI over the gateway's published document.
// No inline script (CSP), no other origin: "Try it out" requests are sent
// to this origin, so they go through the gateway itself.
"use strict";
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  withCredentials: false,
  requestInterceptor: function (req) {
    if (req.url !== undefined && !req.url.endsWith("/openapi.json")) {
      var u = new URL(req.url, window.location.href);
      req.url = window.location.origin + u.pathname + u.search;
    }
    return req;
  },
});
