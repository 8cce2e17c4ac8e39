// Loaded between require.js and the ipywidgets HTML manager (embed-amd.js), from the same folder.
(function () {
  // 1. embed-amd.js defines six AMD modules ("@jupyter-widgets/base", "…/controls", "…/base7",
  //    "…/controls7", "…/html-manager", "…/html-manager/dist/libembed-amd"); each webpack bundle finds its
  //    Font Awesome files beside the URL RequireJS gives its module. Without these paths RequireJS
  //    resolves the names relative to the page and the browser asks for <page>/@jupyter-widgets/*.woff2
  //    (404). Both entries point at this folder; RequireJS uses the longest matching prefix.
  var here = document.currentScript && document.currentScript.src;
  if (here && typeof require !== "undefined") {
    var folder = here.slice(0, here.lastIndexOf("/"));
    require.config({ paths: { "@jupyter-widgets/html-manager/dist": folder, "@jupyter-widgets": folder } });
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
