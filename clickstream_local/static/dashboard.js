// Unique visitors over time: fetches the dashboard API every 5 s and draws an SVG chart,
// the totals, the bucket table and the windows panel. No libraries, no external requests.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const SERIES_API = "/dashboard/api/unique-visitors";
  const WINDOWS_API = "/dashboard/api/windows";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_HEIGHT = 340;
  const MARGIN = { top: 16, right: 24, bottom: 56, left: 68 };
  const INTERVAL_SECONDS = { "10s": 10, "1m": 60, "5m": 300 };
  const INTERVAL_NAMES = { "10s": "10 seconds", "1m": "minute", "5m": "5 minutes" };
  // Spacing of x labels, in seconds: the smallest that fits is used, so labels fall on round times.
  const LABEL_STEPS = [10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
    43200, 86400, 172800, 604800];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
    "Dec"];
  const numbers = new Intl.NumberFormat("en-US");

  const state = { interval: "1m", range: "all", series: null, request: 0 };

  function $(id) {
    return document.getElementById(id);
  }

  function svg(name, attributes, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      node.setAttribute(key, String(value));
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function element(name, attributes, text) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) {
      node.setAttribute(key, String(value));
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function pad(value) {
    return String(value).padStart(2, "0");
  }

  function clock(date, withSeconds) {
    const base = pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes());
    return withSeconds ? base + ":" + pad(date.getUTCSeconds()) : base;
  }

  function day(date) {
    return date.getUTCDate() + " " + MONTHS[date.getUTCMonth()] + " " + date.getUTCFullYear();
  }

  function isoDay(date) {
    return date.getUTCFullYear() + "-" + pad(date.getUTCMonth() + 1) + "-" + pad(date.getUTCDate());
  }

  function withSeconds() {
    return INTERVAL_SECONDS[state.interval] < 60;
  }

  // ---- data ----

  async function fetchJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      throw new Error(body && body.error ? body.error : "HTTP " + response.status);
    }
    return body;
  }

  async function refresh() {
    const request = ++state.request;
    const query = "?interval=" + encodeURIComponent(state.interval) +
      "&range=" + encodeURIComponent(state.range);
    const [series, windows] = await Promise.allSettled([
      fetchJson(SERIES_API + query),
      fetchJson(WINDOWS_API),
    ]);
    if (request !== state.request) {
      return; // the settings changed meanwhile; a newer request will draw
    }
    if (series.status === "fulfilled") {
      state.series = series.value;
      $("error").hidden = true;
      render();
      setStatus(true, "Updated " + clock(new Date(), true) + " UTC");
    } else {
      $("error").textContent = "Could not load unique visitors: " + series.reason.message;
      $("error").hidden = false;
      setStatus(false, "Update failed at " + clock(new Date(), true) + " UTC");
    }
    if (windows.status === "fulfilled") {
      renderWindows(windows.value);
    } else {
      renderWindowsError(windows.reason.message);
    }
  }

  function setStatus(ok, text) {
    $("status").classList.toggle("ok", ok);
    $("status").classList.toggle("failed", !ok);
    $("last-updated").textContent = text;
  }

  // ---- totals and table ----

  function render() {
    const series = state.series;
    if (!series) {
      return;
    }
    const threshold = series.precision_threshold;
    $("index-pattern").textContent = series.index_pattern;
    $("interval-name").textContent = INTERVAL_NAMES[series.interval] || series.interval;
    setFigure($("total-unique"), series.total_unique_visitors, threshold);
    setFigure($("total-events"), series.total_events, null);
    $("precision-note").textContent = "Counts are exact up to " + numbers.format(threshold) +
      " distinct visitors (the cardinality precision threshold) and approximate " +
      "(HyperLogLog++, marked ≈) above it.";
    renderTable(series.buckets, threshold);
    renderChart(series.buckets, threshold);
  }

  function approximate(value, threshold) {
    return threshold !== null && value > threshold;
  }

  function setFigure(node, value, threshold) {
    node.dataset.value = String(value);
    node.textContent = (approximate(value, threshold) ? "≈" : "") + numbers.format(value);
  }

  function renderTable(buckets, threshold) {
    const rows = buckets.map(function (bucket) {
      const start = new Date(bucket.start);
      const row = element("tr", {
        "data-start": bucket.start,
        "data-unique-visitors": bucket.unique_visitors,
        "data-events": bucket.events,
      });
      const when = element("td");
      when.append(element("time", { datetime: bucket.start },
        isoDay(start) + " " + clock(start, withSeconds())));
      row.append(
        when,
        element("td", { class: "num" },
          (approximate(bucket.unique_visitors, threshold) ? "≈" : "") +
          numbers.format(bucket.unique_visitors)),
        element("td", { class: "num" }, numbers.format(bucket.events)),
      );
      return row;
    });
    if (rows.length === 0) {
      const row = element("tr");
      row.append(element("td", { colspan: 3 }, "No events in this range yet."));
      rows.push(row);
    }
    $("bucket-rows").replaceChildren(...rows);
  }

  // ---- chart ----

  function niceStep(maximum) {
    const raw = Math.max(maximum / 5, 1);
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    const residual = raw / magnitude;
    const nice = residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 5 ? 5 : 10;
    return nice * magnitude;
  }

  function renderChart(buckets, threshold) {
    const chart = $("chart");
    if (buckets.every((bucket) => bucket.events === 0)) {
      chart.replaceChildren(element("p", { class: "empty" }, "No events in this range yet."));
      return;
    }
    const width = Math.max(Math.floor(chart.clientWidth), 320);
    const plotWidth = width - MARGIN.left - MARGIN.right;
    const plotHeight = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
    const times = buckets.map((bucket) => Date.parse(bucket.start));
    const values = buckets.map((bucket) => bucket.unique_visitors);
    const first = times[0];
    const last = times[times.length - 1];
    const peak = Math.max(...values);
    const step = niceStep(peak);
    const top = Math.max(Math.ceil(peak / step), 1) * step;
    const x = (time) => MARGIN.left +
      (last === first ? plotWidth / 2 : ((time - first) / (last - first)) * plotWidth);
    const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;
    const base = MARGIN.top + plotHeight;

    const peakIndex = values.indexOf(peak);
    const root = svg("svg", {
      viewBox: "0 0 " + width + " " + CHART_HEIGHT,
      width: width,
      height: CHART_HEIGHT,
      role: "img",
      "aria-labelledby": "chart-svg-title chart-svg-desc",
    });
    root.append(
      svg("title", { id: "chart-svg-title" }, "Unique visitors per " +
        (INTERVAL_NAMES[state.series.interval] || state.series.interval)),
      svg("desc", { id: "chart-svg-desc" }, buckets.length + " buckets from " +
        clock(new Date(first), withSeconds()) + " to " + clock(new Date(last), withSeconds()) +
        " UTC; peak " + numbers.format(peak) + " at " +
        clock(new Date(times[peakIndex]), withSeconds()) +
        " UTC. The table below lists every value."),
    );

    // y axis: grid lines and labels
    for (let value = 0; value <= top; value += step) {
      const position = y(value);
      root.append(
        svg("line", { class: "grid-line", x1: MARGIN.left, x2: MARGIN.left + plotWidth,
          y1: position, y2: position }),
        svg("text", { class: "tick-label", x: MARGIN.left - 10, y: position + 4,
          "text-anchor": "end" }, numbers.format(value)),
      );
    }
    root.append(
      svg("text", { class: "axis-title", transform: "translate(16 " +
        (MARGIN.top + plotHeight / 2) + ") rotate(-90)", "text-anchor": "middle" },
      "Unique visitors"),
    );

    // x axis: labels on round times, thinned so they never overlap
    const labelWidth = (withSeconds() ? 8 : 5) * 8 + 20;
    const maxLabels = Math.max(Math.floor(plotWidth / labelWidth), 1);
    const intervalSeconds = INTERVAL_SECONDS[state.series.interval] || 60;
    const spanSeconds = (last - first) / 1000;
    let labelStep = LABEL_STEPS[LABEL_STEPS.length - 1];
    for (const candidate of LABEL_STEPS) {
      if (candidate % intervalSeconds === 0 && spanSeconds / candidate + 1 <= maxLabels) {
        labelStep = candidate;
        break;
      }
    }
    root.append(svg("line", { class: "axis-line", x1: MARGIN.left, x2: MARGIN.left + plotWidth,
      y1: base, y2: base }));
    let lastLabelX = -Infinity;
    times.forEach(function (time) {
      if ((time / 1000) % labelStep !== 0 && times.length > 1) {
        return;
      }
      const position = x(time);
      if (position - lastLabelX < labelWidth) {
        return;
      }
      lastLabelX = position;
      root.append(
        svg("line", { class: "axis-line", x1: position, x2: position, y1: base, y2: base + 5 }),
        svg("text", { class: "tick-label", x: position, y: base + 20, "text-anchor": "middle" },
          clock(new Date(time), withSeconds())),
      );
    });
    const firstDay = day(new Date(first));
    const lastDay = day(new Date(last));
    root.append(svg("text", { class: "axis-title", x: MARGIN.left + plotWidth / 2,
      y: CHART_HEIGHT - 8, "text-anchor": "middle" },
    "Time (UTC), " + (firstDay === lastDay ? firstDay : firstDay + " – " + lastDay)));

    // the series: area, line, then points with tooltips
    const line = times.map((time, index) => (index === 0 ? "M" : "L") + x(time).toFixed(1) +
      " " + y(values[index]).toFixed(1)).join(" ");
    if (times.length > 1) {
      root.append(
        svg("path", { class: "series-area", d: line + " L" + x(last).toFixed(1) + " " + base +
          " L" + x(first).toFixed(1) + " " + base + " Z" }),
        svg("path", { class: "series-line", d: line }),
      );
    }
    const radius = times.length > 240 ? 2 : times.length > 90 ? 2.5 : 4;
    buckets.forEach(function (bucket, index) {
      const point = svg("circle", {
        class: "point",
        cx: x(times[index]).toFixed(1),
        cy: y(values[index]).toFixed(1),
        r: radius,
        "data-start": bucket.start,
        "data-unique-visitors": bucket.unique_visitors,
        "data-events": bucket.events,
      });
      point.append(svg("title", {}, clock(new Date(times[index]), withSeconds()) + " UTC: " +
        (approximate(bucket.unique_visitors, threshold) ? "≈" : "") +
        numbers.format(bucket.unique_visitors) + " unique visitors, " +
        numbers.format(bucket.events) + " events"));
      root.append(point);
    });
    chart.replaceChildren(root);
  }

  // ---- windows panel ----

  const WINDOW_TITLES = {
    unique_users_per_url: "Unique users per URL",
    top_sources: "Top traffic sources",
  };

  function windowLength(seconds) {
    return seconds % 60 === 0 ? seconds / 60 + " min" : seconds + " s";
  }

  function renderWindows(payload) {
    const body = $("windows-body");
    if (!payload.available) {
      body.replaceChildren(
        element("span", { class: "badge", id: "windows-status" }, "Not available yet"),
        element("p", { class: "empty" }, payload.message),
      );
      return;
    }
    const groups = new Map();
    for (const row of payload.rows) {
      const key = row.metric + "/" + row.window_seconds;
      const latest = groups.get(key);
      if (!latest || row.window_start > latest.start) {
        groups.set(key, { start: row.window_start, row: row, rows: [] });
      }
    }
    for (const row of payload.rows) {
      const group = groups.get(row.metric + "/" + row.window_seconds);
      if (group.start === row.window_start) {
        group.rows.push(row);
      }
    }
    const nodes = [element("span", { class: "badge live", id: "windows-status" }, "Live")];
    if (groups.size === 0) {
      nodes.push(element("p", { class: "empty" }, "No windows yet."));
    }
    for (const group of groups.values()) {
      const start = new Date(group.start);
      nodes.push(element("h3", {}, (WINDOW_TITLES[group.row.metric] || group.row.metric) +
        " · " + windowLength(group.row.window_seconds) + " window at " + clock(start, true) +
        " UTC" +
        (group.rows.every((row) => row.final) ? " (final)" : " (provisional)")));
      const table = element("table");
      const head = element("tr");
      head.append(element("th", { scope: "col" }, "Key"),
        element("th", { scope: "col", class: "num" }, "Value"));
      table.append(element("thead"), element("tbody"));
      table.tHead.append(head);
      group.rows
        .sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .forEach(function (row) {
          const line = element("tr");
          const value = row.approximate
            ? element("td", {
              class: "num",
              title: "Estimated: within " + (row.error_bound * 100).toFixed(1) + " % of the exact count",
            }, "≈ " + numbers.format(row.value))
            : element("td", { class: "num" }, numbers.format(row.value));
          line.append(element("td", {}, row.key), value);
          table.tBodies[0].append(line);
        });
      nodes.push(table);
    }
    body.replaceChildren(...nodes);
  }

  function renderWindowsError(message) {
    $("windows-body").replaceChildren(
      element("p", { class: "error" }, "Could not load window results: " + message),
    );
  }

  // ---- settings ----

  function choose(select, value) {
    const allowed = Array.from(select.options).map((option) => option.value);
    return allowed.includes(value) ? value : select.value;
  }

  function start() {
    const parameters = new URLSearchParams(window.location.search);
    state.interval = choose($("interval"), parameters.get("interval"));
    state.range = choose($("range"), parameters.get("range"));
    $("interval").value = state.interval;
    $("range").value = state.range;
    $("controls").addEventListener("submit", (event) => event.preventDefault());
    $("controls").addEventListener("change", function () {
      state.interval = $("interval").value;
      state.range = $("range").value;
      const url = new URL(window.location.href);
      url.searchParams.set("interval", state.interval);
      url.searchParams.set("range", state.range);
      window.history.replaceState(null, "", url);
      refresh();
    });
    let resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(render, 150);
    });
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  start();
})();
