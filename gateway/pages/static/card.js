// The card page's chart: TradingView Lightweight Charts (served from the
// installed `lightweight-charts` wheel), fed from the data the server embedded
// in #chart's data-series attribute (HTML-escaped by the template).
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("chart");
    if (!el || !window.LightweightCharts) return;
    var data = JSON.parse(el.dataset.series);
    var toPoints = function (rows) {
      return rows.map(function (r) { return { time: r[0], value: r[1] }; });
    };
    var chart = LightweightCharts.createChart(el, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: "#1d2330" },
      grid: { vertLines: { color: "#eef0f4" }, horzLines: { color: "#eef0f4" } },
      rightPriceScale: { borderColor: "#dfe3ea" },
      timeScale: { borderColor: "#dfe3ea" },
    });
    var band = { color: "#f0a35e", lineWidth: 1, lineStyle: LightweightCharts.LineStyle.Dashed,
                 priceLineVisible: false, lastValueVisible: false };
    var high = chart.addLineSeries(Object.assign({ title: "band high" }, band));
    var low = chart.addLineSeries(Object.assign({ title: "band low" }, band));
    var fair = chart.addLineSeries({ color: "#e8710a", lineWidth: 2, title: "fair" });
    var market = chart.addLineSeries({ color: "#1a56b8", lineWidth: 2, title: "market" });
    high.setData(toPoints(data.high));
    low.setData(toPoints(data.low));
    fair.setData(toPoints(data.fair));
    market.setData(toPoints(data.market));
    var markers = data.markers.map(function (m) {
      var buy = m[1] === "BUY";
      return { time: m[0], position: buy ? "belowBar" : "aboveBar", color: buy ? "#127a3e" : "#b3261e",
               shape: buy ? "arrowUp" : "arrowDown" };
    });
    market.setMarkers(markers);
    chart.timeScale().fitContent();
    // What the chart holds, for tests and for anyone inspecting the page.
    window.pokewatchChart = {
      market: market.data().length, fair: fair.data().length, low: low.data().length,
      high: high.data().length, markers: markers.length,
    };
    el.dataset.points = String(market.data().length);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
