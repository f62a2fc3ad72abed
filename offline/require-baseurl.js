
// vgh-book: RequireJS resolves the widget embedder's modules, and the fonts that the embedder loads
// next to its own module, relative to this file instead of to the page that includes it.
(function () {
  var me = document.currentScript;
  if (me && me.src) requirejs.config({ baseUrl: me.src.replace(/[?#].*$/, "").replace(/[^\/]*$/, "") });
})();
