// The planner's workbench: every answer on the page is an answer of the service's own API.
// window.workbench exposes the same actions the buttons run (setGeometry, analyse, compare, bands, ...), so a
// script or a test can drive the page without a mouse.
"use strict";
(() => {
  const base = document.body.dataset.base || "";
  const LABELS = JSON.parse(document.getElementById("workbench-labels").textContent);
  const COLOURS = ["#d62728", "#1f77b4", "#2ca02c"];
  const NAMES = ["方案一", "方案二", "方案三"];
  const MAX_CANDIDATES = 3;

  // ------------------------------------------------------------------ talking to the API

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  // The service answers in English (``detail``) and, asked with Accept-Language: zh as every request here is,
  // in Chinese (``detail_zh``, worded once in api/messages_zh.py); the place comes as ``where`` and ``point``.
  function describe(status, body) {
    if (body && body.detail_zh) return body.detail_zh;
    if (!body || body.detail === undefined) return `请求失败（HTTP ${status}）`;
    return `请求失败：${body.detail}${body.where ? `（${body.where}）` : ""}`;
  }

  async function request(path, options = {}) {
    const headers = {"Accept-Language": "zh", ...(options.headers || {})};
    return fetch(base + path, {credentials: "same-origin", ...options, headers});
  }

  async function api(path, options = {}) {
    const response = await request(path, options);
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(describe(response.status, body), response.status, body);
    return body;
  }

  const post = (path, data) => api(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(data)});

  // ------------------------------------------------------------------ small helpers

  const $ = id => document.getElementById(id);
  const number = (value, digits = 0) => value === null || value === undefined ? "—" :
    Number(value).toLocaleString("zh-CN", {minimumFractionDigits: digits, maximumFractionDigits: digits});
  const label = (table, key) => (LABELS[table] || {})[key] || key || "";

  function cell(text, numeric = false) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (numeric) td.className = "n";
    return td;
  }

  function row(cells, attributes = {}) {
    const tr = document.createElement("tr");
    for (const [k, v] of Object.entries(attributes)) tr.setAttribute(k, v);
    tr.append(...cells);
    return tr;
  }

  function show(id, text, ok = true) {
    const box = $(id);
    box.textContent = text;
    box.className = "result" + (ok ? "" : " error");
  }

  async function guarded(id, action) {
    show(id, "处理中……");
    document.body.dataset.busy = "true";
    try {
      const message = await action();
      show(id, message || "");
    } catch (error) {
      show(id, error instanceof ApiError ? error.message : `出错：${error}`, false);
      if (error instanceof ApiError) markError(error.body);
      document.body.dataset.error = error instanceof ApiError ? error.message : String(error);
    } finally {
      document.body.dataset.busy = "false";
    }
  }

  // ------------------------------------------------------------------ the map: our layers only, no basemap

  const map = L.map("map", {zoomControl: true}).setView([30.63, 118.98], 13);
  L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
  const districtLayer = L.geoJSON(null, {style: {color: "#525252", weight: 1, fill: false}, pmIgnore: true})
    .addTo(map);
  const projectLayer = L.geoJSON(null, {
    style: {color: LABELS.footprint_colour, weight: 2, dashArray: "6 4", fillOpacity: 0.05}, pmIgnore: true,
    onEachFeature: (f, layer) => layer.bindTooltip(f.properties.name),
  }).addTo(map);
  const hitLayer = L.geoJSON(null, {
    pmIgnore: true,
    style: f => ({color: "#333", weight: 0.8, fillColor: LABELS.stage_colours[f.properties.stage] || "#999",
                  fillOpacity: 0.75}),
    onEachFeature: (f, layer) => layer.bindTooltip(
      `${f.properties.code} ${label("stages", f.properties.stage)} 占压 ${number(f.properties.overlap_m2, 1)} ㎡`),
  }).addTo(map);
  const footprintLayer = L.geoJSON(null, {pmIgnore: true, style: {weight: 1, dashArray: "3 3", fillOpacity: 0.08}})
    .addTo(map);
  const parcelLayer = L.geoJSON(null, {pmIgnore: true, style: {color: "#000", weight: 3, fillOpacity: 0.1}}).addTo(map);
  const markLayer = L.layerGroup().addTo(map);

  const feature = (geometry, properties = {}) => ({type: "Feature", geometry, properties});

  async function loadContext() {
    const [{districts}, {projects}] = await Promise.all([api("/districts?geometry=true"),
                                                          api("/projects?geometry=true")]);
    districts.forEach(d => districtLayer.addData(feature(d.geometry, {name: d.name})));
    projects.forEach(p => projectLayer.addData(feature(p.footprint, {name: p.name, code: p.code})));
    const select = document.querySelector("#search-form [name=district]");
    select.append(...districts.map(d => new Option(`${d.name}（${d.code}）`, d.code)));
    const bounds = districtLayer.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds);
  }

  // ------------------------------------------------------------------ candidates (方案) drawn on the map

  const candidates = [];
  let active = 0;

  function newCandidate() {
    const i = candidates.length;
    candidates.push({name: NAMES[i], colour: COLOURS[i], geometry: null, width: 30, layer: null});
    active = i;
    renderCandidates();
  }

  const isLine = geometry => geometry && /LineString$/.test(geometry.type);

  function renderCandidates() {
    const box = $("candidates");
    box.replaceChildren(...candidates.map((c, i) => {
      const div = document.createElement("div");
      div.className = "candidate" + (i === active ? " active" : "");
      div.style.borderColor = c.colour;
      div.dataset.index = i;
      const what = !c.geometry ? "（未画）" : isLine(c.geometry) ? "线" : "面";
      div.innerHTML = `<label><input type="radio" name="active" ${i === active ? "checked" : ""}> <b></b></label>
        <span class="what"></span>
        <label>宽度（米）<input type="number" name="width" min="1" max="2000" step="any"></label>`;
      div.querySelector("b").textContent = c.name;
      div.querySelector(".what").textContent = what;
      const width = div.querySelector("[name=width]");
      width.value = c.width ?? "";
      width.disabled = !!c.geometry && !isLine(c.geometry);
      width.addEventListener("change", () => { c.width = width.value === "" ? null : Number(width.value); });
      div.querySelector("[name=active]").addEventListener("change", () => { active = i; renderCandidates(); });
      return div;
    }));
    document.querySelector("[data-action=add-candidate]").disabled = candidates.length >= MAX_CANDIDATES;
  }

  function styleFor(c) {
    return {color: c.colour, weight: 3, fillOpacity: 0.1};
  }

  // The candidate's geometry is what the API gets; its layer is what the map shows (and what Geoman edits).
  function attach(c, layer) {
    if (c.layer && c.layer !== layer) map.removeLayer(c.layer);
    c.layer = layer;
    layer.setStyle && layer.setStyle(styleFor(c));
    c.geometry = layer.toGeoJSON().geometry;
    layer.on("pm:edit", () => { c.geometry = layer.toGeoJSON().geometry; });
    layer.on("pm:remove", () => { c.layer = null; c.geometry = null; renderCandidates(); });
    renderCandidates();
  }

  function setGeometry(index, geometry, width) {
    while (candidates.length <= index) newCandidate();
    const c = candidates[index];
    active = index;
    if (width !== undefined) c.width = width;
    const layer = L.geoJSON(geometry).getLayers()[0];
    layer.addTo(map);
    attach(c, layer);
    return c;
  }

  map.pm.setLang("zh");
  map.pm.addControls({
    position: "topleft", drawMarker: false, drawCircleMarker: false, drawCircle: false, drawText: false,
    cutPolygon: false, rotateMode: false, drawRectangle: true,
  });
  map.on("pm:create", e => {
    if (!candidates.length) newCandidate();
    attach(candidates[active], e.layer);
  });

  // A place the service names (an invalid geometry's self-intersection): marked on the map, in view.
  function markError(body) {
    markLayer.clearLayers();
    if (!body || !Array.isArray(body.point)) return;
    const [x, y] = body.point;
    const marker = L.circleMarker([y, x], {radius: 9, color: "#b00020", weight: 3, fillOpacity: 0.3})
      .bindTooltip(`问题位置：${y.toFixed(6)}, ${x.toFixed(6)}`, {permanent: true, className: "pb-error-marker"})
      .addTo(markLayer);
    map.setView(marker.getLatLng(), Math.max(map.getZoom(), 16));
    document.body.dataset.errorPoint = `${x},${y}`;
  }

  function current() {
    const c = candidates[active];
    if (!c || !c.geometry) throw new ApiError("请先在地图上画线或画面", 0, null);
    return c;
  }

  const body = c => ({geometry: c.geometry, width_m: isLine(c.geometry) ? c.width : null});

  // ------------------------------------------------------------------ what a drawn line hits

  const TOTAL_ROWS = [
    ["parcels", "地块（宗）", 0], ["households", "户数", 0], ["house_m2", "房屋（㎡）", 1], ["land_mu", "土地（亩）", 2],
    ["overlap_m2", "占压面积（㎡）", 1], ["holdouts", "钉子户", 0], ["estimated_compensation_yuan", "估算补偿（元）", 0],
  ];

  function renderTotals(answer) {
    const t = answer.totals;
    const table = document.createElement("table");
    table.id = "totals-table";
    table.innerHTML = "<thead><tr><th>片区</th>" + TOTAL_ROWS.map(r => `<th class="n">${r[1]}</th>`).join("") +
      "</tr></thead>";
    const tbody = document.createElement("tbody");
    for (const d of answer.by_district) {
      tbody.append(row([cell(d.district_name), ...TOTAL_ROWS.map(([k, , n]) => cell(number(d[k], n), true))]));
    }
    tbody.append(row([cell("合计"), ...TOTAL_ROWS.map(([k, , n]) => cell(number(t[k], n), true))],
                     {class: "total", "data-totals": ""}));
    table.append(tbody);
    $("totals").replaceChildren(table);
  }

  function renderHits(answer) {
    $("hits-table").replaceChildren(...answer.parcels.map(h => row([
      cell(h.code), cell(h.district_name), cell(label("kinds", h.kind)), cell(label("stages", h.stage)),
      cell(number(h.overlap_m2, 1), true), cell(`${number(h.share * 100, 1)}%`, true),
      cell(number(h.estimated_compensation_yuan, 0), true), cell(h.owner_name),
    ], {"data-id": h.parcel_id, "data-code": h.code})));
    hitLayer.clearLayers();
    footprintLayer.clearLayers();
    answer.parcels.forEach(h => hitLayer.addData(feature(h.geometry, h)));
    footprintLayer.addData(feature(answer.query.footprint));
  }

  function renderCrossings(answer) {
    const box = $("crossings");
    const p = document.createElement("p");
    p.id = "crossings-summary";
    const size = answer.length_m !== undefined ? `线长 ${number(answer.length_m, 1)} 米` :
      `面积 ${number(answer.area_m2, 1)} ㎡（${number(answer.area_mu, 2)} 亩）`;
    const names = answer.projects.map(x => x.inside_m !== undefined ?
      `${x.name}（红线内 ${number(x.inside_m, 1)} 米，穿越 ${x.crossing_points.length} 处）` :
      `${x.name}（重叠 ${number(x.overlap_m2, 1)} ㎡）`);
    p.textContent = `${size}；${names.length ? "涉及项目红线：" + names.join("、") : "不涉及已有项目红线"}`;
    box.replaceChildren(p);
    answer.projects.forEach(x => (x.crossing_points || []).forEach(([lon, lat]) =>
      L.circleMarker([lat, lon], {radius: 5, color: LABELS.footprint_colour, weight: 2}).bindTooltip(x.name)
        .addTo(markLayer)));
  }

  async function analyse() {
    let result = null;
    await guarded("draw-result", async () => {
      markLayer.clearLayers();
      const c = current();
      const [answer, crossing] = await Promise.all([
        post("/overlaps", {...body(c), with_geometry: true}),
        post("/overlaps/crossings", {geometry: c.geometry}),
      ]);
      renderTotals(answer);
      renderHits(answer);
      renderCrossings(crossing);
      $("exports").hidden = false;
      workbench.last = answer;
      workbench.lastCrossings = crossing;
      document.body.dataset.analysed = String(answer.totals.parcels);
      if (answer.parcels.length) map.fitBounds(hitLayer.getBounds().extend(footprintLayer.getBounds()));
      result = answer;
      return `${c.name}：涉及地块 ${answer.totals.parcels} 宗，占压 ${number(answer.totals.overlap_m2, 1)} ㎡，` +
        `估算补偿 ${number(answer.totals.estimated_compensation_yuan, 0)} 元`;
    });
    return result;
  }

  // A download of the answer: the same request with ?format=, saved under the service's file name.
  async function exportAnswer(format) {
    let outcome = null;
    await guarded("draw-result", async () => {
      const c = current();
      const response = await request(`/overlaps?format=${encodeURIComponent(format)}`, {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body(c)),
      });
      if (!response.ok) {
        const error = await response.json().catch(() => null);
        throw new ApiError(describe(response.status, error), response.status, error);
      }
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") || "";
      const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
      const plain = /filename="?([^";]+)"?/i.exec(disposition);
      const name = encoded ? decodeURIComponent(encoded[1]) : plain ? plain[1] : `占压分析.${format}`;
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      outcome = {status: response.status, name, size: blob.size, type: blob.type};
      return `已导出 ${name}`;
    });
    return outcome;
  }

  // ------------------------------------------------------------------ 比选: candidates side by side

  async function compare() {
    let result = null;
    await guarded("compare-result", async () => {
      markLayer.clearLayers();
      const drawn = candidates.filter(c => c.geometry);
      if (drawn.length < 2) throw new ApiError("比选至少需要两个已画好的方案", 0, null);
      const [answer, ...crossings] = await Promise.all([
        post("/overlaps/compare", {candidates: drawn.map(c => ({name: c.name, ...body(c)}))}),
        ...drawn.map(c => post("/overlaps/crossings", {geometry: c.geometry})),
      ]);
      const table = $("compare-table");
      const head = "<thead><tr><th>指标</th>" + answer.candidates.map(() => '<th class="n"></th>').join("") +
        "</tr></thead>";
      table.innerHTML = head;
      table.querySelectorAll("thead th.n").forEach((th, i) => { th.textContent = answer.candidates[i].name; });
      const tbody = document.createElement("tbody");
      for (const [key, title, digits] of TOTAL_ROWS) {
        tbody.append(row([cell(title), ...answer.candidates.map(c => cell(number(c.totals[key], digits), true))],
                         {"data-metric": key}));
      }
      tbody.append(row([cell("红线面积（㎡）"), ...answer.candidates.map(c => cell(number(c.query.footprint_m2, 1), true))],
                       {"data-metric": "footprint_m2"}));
      tbody.append(row([cell("线长（米）"), ...crossings.map(x => cell(number(x.length_m, 1), true))],
                       {"data-metric": "length_m"}));
      tbody.append(row([cell("涉及项目红线"), ...crossings.map(x => cell(x.projects.map(p => p.name).join("、") || "无"))],
                       {"data-metric": "crossings"}));
      tbody.append(row([cell("涉及钉子户"), ...answer.candidates.map(c => cell(c.holdouts.map(h => h.code).join("、") || "无"))],
                       {"data-metric": "holdout_codes"}));
      table.append(tbody);
      workbench.lastCompare = answer;
      document.body.dataset.compared = String(answer.candidates.length);
      result = answer;
      return `各方案共同涉及地块 ${answer.hit_by_all_count} 宗`;
    });
    return result;
  }

  // ------------------------------------------------------------------ distance bands from the centre line

  async function bands(edges) {
    let result = null;
    await guarded("bands-result", async () => {
      const c = current();
      const text = edges ? edges.join(",") : $("bands-input").value;
      const values = text.split(/[,，\s]+/).filter(Boolean).map(Number);
      if (values.some(v => !Number.isFinite(v))) throw new ApiError("距离带须为逗号分隔的米数", 0, null);
      const answer = await post("/overlaps/bands", {geometry: c.geometry, bands: values});
      $("bands-table").replaceChildren(...answer.bands.map(b => row([
        cell(`${number(b.from_m)}–${number(b.to_m)}`), cell(b.parcels, true), cell(b.households, true),
        cell(number(b.house_m2, 1), true), cell(number(b.land_mu, 2), true), cell(b.holdouts, true),
      ], {"data-band": `${b.from_m}-${b.to_m}`})));
      workbench.lastBands = answer;
      result = answer;
      return `${c.name}：${answer.bands.map(b => `${b.from_m}–${b.to_m} 米 ${b.parcels} 宗`).join("；")}`;
    });
    return result;
  }

  // ------------------------------------------------------------------ parcel search and card

  async function search(criteria) {
    let result = null;
    await guarded("search-result", async () => {
      const form = $("search-form");
      const params = new URLSearchParams();
      for (const name of ["code", "district", "owner"]) {
        const value = criteria ? criteria[name] : form.elements[name] && form.elements[name].value.trim();
        if (value) params.set(name, value);
      }
      const answer = await api(`/parcels/search?${params}`);
      $("search-table").replaceChildren(...answer.items.map(p => row([
        cell(p.code), cell(p.district_name), cell(label("kinds", p.kind)), cell(label("stages", p.stage)),
        cell(p.owner_name),
      ], {"data-id": p.id})));
      result = answer;
      return answer.total > answer.items.length ? `共 ${answer.total} 宗，显示前 ${answer.items.length} 宗` :
        `共 ${answer.total} 宗`;
    });
    return result;
  }

  function section(title, headers, rows) {
    const h = document.createElement("h4");
    h.textContent = title;
    if (!rows.length) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = "无";
      return [h, p];
    }
    const table = document.createElement("table");
    const tr = document.createElement("tr");
    tr.append(...headers.map(x => { const th = document.createElement("th"); th.textContent = x; return th; }));
    const thead = document.createElement("thead");
    thead.append(tr);
    const tbody = document.createElement("tbody");
    tbody.append(...rows.map(cells => row(cells)));
    table.append(thead, tbody);
    return [h, table];
  }

  function change(event) {
    if (event.stage_from || event.stage_to) {
      return `${label("stages", event.stage_from) || "—"} → ${label("stages", event.stage_to)}`;
    }
    return Object.keys(event.changes || {}).join("、");
  }

  async function openParcel(id) {
    let result = null;
    await guarded("search-result", async () => {
      const p = await api(`/parcels/${encodeURIComponent(id)}`);
      const card = $("parcel-card");
      const title = document.createElement("h3");
      title.textContent = `地块 ${p.code}`;
      const facts = document.createElement("p");
      facts.id = "parcel-facts";
      const area = p.kind === "house" ? `建筑面积 ${number(p.floor_area_m2, 1)} ㎡` : `土地 ${number(p.land_area_mu, 2)} 亩`;
      facts.textContent = `${label("kinds", p.kind)}；${p.district.name}；阶段 ${p.stage_label}（自 ${p.stage_since || "—"}）；` +
        `${area}；图形面积 ${number(p.area_m2, 1)} ㎡；权利人 ${p.owner_name || "—"}；户数 ${p.households ?? "—"}` +
        (p.holdout ? "；钉子户" : "") + (p.legacy ? "；历史遗留" : "") +
        (p.projects.length ? `；涉及项目 ${p.projects.map(x => x.name).join("、")}` : "");
      card.replaceChildren(
        title, facts,
        ...section("时间线", ["时间", "人员", "事项", "变化", "说明"], p.timeline.map(e => [
          cell((e.at || "").replace("T", " ").slice(0, 16)), cell(e.actor), cell(label("events", e.kind)),
          cell(change(e)), cell(e.note)])),
        ...section("补偿款", ["发放日", "科目", "金额（元）", "说明"], p.payments.map(x => [
          cell(x.paid_on), cell(label("items", x.item)), cell(number(x.amount_yuan, 2), true), cell(x.note)])),
        ...section("档案", ["类型", "文件", "上传", "时间"], p.documents.map(d => [
          cell(label("documents", d.kind)), cell(d.filename), cell(d.uploaded_by),
          cell((d.uploaded_at || "").slice(0, 10))])),
      );
      if (p.documents_missing && p.documents_missing.length) {
        const missing = document.createElement("p");
        missing.className = "result error";
        missing.textContent = "缺少档案：" + p.documents_missing.map(k => label("documents", k)).join("、");
        card.append(missing);
      }
      card.dataset.parcel = p.code;
      parcelLayer.clearLayers();
      if (p.geometry) {
        parcelLayer.addData(feature(p.geometry));
        map.fitBounds(parcelLayer.getBounds(), {maxZoom: 18});
      }
      result = p;
      return `已打开地块 ${p.code}`;
    });
    return result;
  }

  // ------------------------------------------------------------------ wiring

  $("search-form").addEventListener("submit", event => { event.preventDefault(); search(); });
  $("search-table").addEventListener("click", event => {
    const tr = event.target.closest("tr[data-id]");
    if (tr) openParcel(tr.dataset.id);
  });
  $("hits-table").addEventListener("click", event => {
    const tr = event.target.closest("tr[data-id]");
    if (tr) openParcel(tr.dataset.id);
  });
  document.querySelector("[data-action=add-candidate]").addEventListener("click", () => {
    if (candidates.length < MAX_CANDIDATES) newCandidate();
  });
  document.querySelector("[data-action=analyse]").addEventListener("click", () => analyse());
  document.querySelector("[data-action=compare]").addEventListener("click", () => compare());
  document.querySelector("[data-action=bands]").addEventListener("click", () => bands());
  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () => exportAnswer(button.dataset.export));
  }

  const workbench = {map, candidates, setGeometry, analyse, compare, bands, search, openParcel, exportAnswer,
                     setActive: i => { active = i; renderCandidates(); }};
  window.workbench = workbench;

  newCandidate();
  loadContext()
    .catch(error => show("draw-result", error instanceof ApiError ? error.message : `出错：${error}`, false))
    .finally(() => { document.body.dataset.ready = "true"; });
})();
