// The lineage page: an interactive graph of files, steps and runs (cytoscape.js + dagre, vendored).
// Data comes from /api/lineage as JSON; every label is drawn on the canvas or set with textContent, never as HTML.
"use strict";
(function () {
  var box = document.getElementById("graph");
  if (!box || typeof cytoscape === "undefined") { return; }
  cytoscape.use(cytoscapeDagre);
  var status = document.getElementById("graph-status");
  var selectedBox = document.getElementById("selected");
  var upButton = document.getElementById("expand-up");
  var downButton = document.getElementById("expand-down");
  var selected = null;

  var cy = cytoscape({
    container: box,
    wheelSensitivity: 0.3,
    minZoom: 0.15,
    maxZoom: 3,
    style: [
      { selector: "node", style: {
          "label": "data(label)", "font-size": 12, "font-family": "DejaVu Sans Mono, Menlo, monospace",
          "text-valign": "center", "text-halign": "center", "color": "#1f2937",
          "text-wrap": "ellipsis", "text-max-width": 200, "width": 210, "height": 34, "shape": "round-rectangle",
          "background-color": "#e8f2fa", "border-width": 2, "border-color": "#1d6fa5" } },
      { selector: "node[?root]", style: { "background-color": "#1d6fa5", "color": "#ffffff", "font-weight": "bold" } },
      { selector: "node[kind = 'step']", style: {
          "shape": "round-tag", "background-color": "#fef3c7", "border-color": "#b45309", "width": 190, "height": 30 } },
      { selector: "node[kind = 'run']", style: {
          "shape": "ellipse", "background-color": "#ede9fe", "border-color": "#6d28d9", "width": 170, "height": 30 } },
      { selector: "node[?removed]", style: { "background-color": "#f3f4f6", "border-style": "dashed", "border-color": "#9ca3af", "color": "#6b7280" } },
      { selector: "node:selected", style: { "border-width": 4, "border-color": "#f59e0b" } },
      { selector: "edge", style: {
          "width": 1.6, "line-color": "#94a3b8", "target-arrow-color": "#94a3b8", "target-arrow-shape": "triangle",
          "curve-style": "bezier", "arrow-scale": 0.9 } }
    ]
  });

  window.limnosLineage = { cy: cy };  // for the browser tests: node positions to click

  function layout() {
    cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 18, rankSep: 70, edgeSep: 10, fit: true, padding: 30,
                animate: false }).run();
  }

  function load(ref, direction, depth) {
    status.textContent = "loading…";
    var url = "/api/lineage?" + new URLSearchParams({ ref: ref, direction: direction, depth: String(depth) });
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (graph) {
      var before = cy.elements().length;
      var added = graph.nodes.concat(graph.edges).filter(function (el) { return cy.getElementById(el.data.id).empty(); });
      added.forEach(function (el) { if (el.data.root !== undefined && cy.nodes().length) { el.data.root = false; } });
      cy.add(added);
      layout();
      status.textContent = cy.nodes().length + " nodes, " + cy.edges().length + " edges" +
        (before ? " (" + added.length + " new)" : "");
      box.setAttribute("data-nodes", String(cy.nodes().length));
      if (selected) { show(cy.getElementById(selected)); }
    }).catch(function (err) { status.textContent = "could not load the graph: " + err.message; });
  }

  function row(dl, key, value) {
    if (value === undefined || value === null || value === "") { return; }
    var dt = document.createElement("dt"); dt.textContent = key;
    var dd = document.createElement("dd"); dd.textContent = String(value);
    dl.appendChild(dt); dl.appendChild(dd);
  }

  function show(node) {
    selectedBox.replaceChildren();
    if (!node || node.empty()) { return; }
    var d = node.data();
    selected = d.id;
    var title = document.createElement("div"); title.className = "title"; title.textContent = d.label;
    selectedBox.appendChild(title);
    var dl = document.createElement("dl");
    row(dl, "kind", d.kind + (d.removed ? " (removed)" : ""));
    function names(nodes) {
      var all = nodes.map(function (n) { return n.data("label"); });
      return all.slice(0, 3).join(", ") + (all.length > 3 ? " and " + (all.length - 3) + " more" : "");
    }
    row(dl, "function", d.function);
    row(dl, "from", names(node.incomers("node")));
    row(dl, "into", names(node.outgoers("node")));
    row(dl, "code", d.code); row(dl, "user", d.user);
    selectedBox.appendChild(dl);
    if (d.kind === "file" && !d.removed) {
      var link = document.createElement("a");
      link.href = "/file?" + new URLSearchParams({ ref: d.ref });
      link.textContent = "Open the file →";
      link.id = "open-file";
      selectedBox.appendChild(link);
    }
    var isFile = d.kind === "file";
    upButton.disabled = !isFile; downButton.disabled = !isFile;
  }

  cy.on("tap", "node", function (evt) { show(evt.target); });
  cy.on("dbltap", "node[kind = 'file']", function (evt) {
    if (!evt.target.data("removed")) { window.location.href = "/file?" + new URLSearchParams({ ref: evt.target.data("ref") }); }
  });
  upButton.addEventListener("click", function () {
    var node = cy.getElementById(selected); if (node.nonempty()) { load(node.data("ref"), "up", 1); }
  });
  downButton.addEventListener("click", function () {
    var node = cy.getElementById(selected); if (node.nonempty()) { load(node.data("ref"), "down", 1); }
  });
  document.getElementById("fit").addEventListener("click", function () { cy.fit(undefined, 30); });

  load(box.getAttribute("data-ref"), "both", 1).then(function () {
    var root = cy.getElementById(box.getAttribute("data-root"));
    if (root.nonempty()) { root.select(); show(root); }
  });
})();
