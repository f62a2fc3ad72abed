// The ipywidgets embedder typesets widget labels with MathJax 2's API (MathJax.Hub.Queue), but the
// book runs MathJax 3, which has no Hub: every widget on a page with math threw a TypeError. This
// gives MathJax 3 the one call the embedder makes. MathJax loads deferred, so it exists by
// DOMContentLoaded, and the embedder renders widgets only after the page's load event.
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub || !mj.startup) return;
  mj.Hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
          var el = job[2];
          mj.startup.promise.then(function () { return mj.typesetPromise([el]); });
        }
      }
    }
  };
});
