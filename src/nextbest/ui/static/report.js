// Draws every chart of the page from the Plotly spec stored next to it (no network).
(function () {
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("figure.nb-chart").forEach(function (figure) {
      var spec = JSON.parse(figure.querySelector("script.nb-spec").textContent);
      var target = figure.querySelector(".nb-plot");
      Plotly.newPlot(target, spec.data, spec.layout, {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]
      });
      figure.setAttribute("data-rendered", "true");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
