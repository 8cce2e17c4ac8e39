// Loaded between require.js and the ipywidgets HTML manager (embed-amd.js), from the same folder.
(function () {
  // 1. The manager's webpack bundle finds its Font Awesome files beside the URL of its own AMD module,
  //    "@jupyter-widgets/html-manager/dist/libembed-amd". Without this, RequireJS resolves that module
  //    relative to the page and the browser asks for fonts under <page>/@jupyter-widgets/... (404).
  var here = document.currentScript && document.currentScript.src;
  if (here && typeof require !== "undefined") {
    require.config({ paths: { "@jupyter-widgets/html-manager/dist": here.slice(0, here.lastIndexOf("/")) } });
  }
  // 2. The widgets typeset their labels with the MathJax 2 call MathJax.Hub.Queue; the book loads
  //    MathJax 3, which has no Hub. Give it one that forwards to MathJax 3 before the widgets render.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (mj && !mj.Hub && mj.typesetPromise) {
      mj.Hub = {
        Queue: function (command) {
          var element = Array.isArray(command) ? command[2] : undefined;
          mj.typesetPromise(element ? [element] : undefined).catch(function () {});
        },
      };
    }
  });
})();
