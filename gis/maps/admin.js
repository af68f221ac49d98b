// The admin page's script: every action is a call to the service's own API (the same routes a script uses).
"use strict";
(() => {
  const base = document.body.dataset.base || "";
  const KIND = {rail: "铁路", road: "道路", zone: "片区开发"};

  class ApiError extends Error {}

  // Asked with Accept-Language: zh, the service words its errors in Chinese too (``detail_zh``).
  function describe(status, body) {
    if (body && body.detail_zh) return body.detail_zh;
    if (!body || body.detail === undefined) return `请求失败（HTTP ${status}）`;
    const detail = Array.isArray(body.detail)
      ? body.detail.map(e => `${(e.loc || []).slice(1).join(".")}：${e.msg}`).join("；")
      : String(body.detail);
    return body.where ? `${detail}（${body.where}）` : detail;
  }

  async function api(path, options = {}) {
    const headers = {"Accept-Language": "zh", ...(options.headers || {})};
    const response = await fetch(base + path, {credentials: "same-origin", ...options, headers});
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(describe(response.status, body));
    return body;
  }

  const json = (method, data) => ({method, headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)});

  // A form's non-empty fields, only the ``names`` given (or all); a file input sends its file.
  function fields(form, names) {
    const data = new FormData();
    for (const element of form.elements) {
      if (!element.name || (names && !names.includes(element.name))) continue;
      if (element.type === "file") {
        if (element.files.length) data.append(element.name, element.files[0]);
      } else if (element.value.trim() !== "") {
        data.append(element.name, element.value.trim());
      }
    }
    return data;
  }

  function show(id, text, ok = true) {
    const box = document.getElementById(id);
    box.textContent = text;
    box.className = "result " + (ok ? "ok" : "error");
  }

  async function guarded(id, action) {
    show(id, "处理中……");
    try {
      show(id, await action());
    } catch (error) {
      show(id, error instanceof ApiError ? error.message : `出错：${error}`, false);
    }
  }

  const number = (value, digits = 0) =>
    Number(value || 0).toLocaleString("zh-CN", {minimumFractionDigits: digits, maximumFractionDigits: digits});

  // ------------------------------------------------------------------ the map: no basemap, our layers only
  const map = L.map("map", {zoomControl: true}).setView([31.2, 121.4], 11);
  const districtLayer = L.geoJSON(null, {style: {color: "#525252", weight: 1, fill: false}}).addTo(map);
  const projectLayer = L.geoJSON(null, {style: {color: "#e7298a", weight: 2, fillOpacity: 0.05}}).addTo(map);
  const previewLayer = L.geoJSON(null, {style: f => f.properties.style}).addTo(map);
  L.control.layers(null, {"片区界线": districtLayer, "现有项目红线": projectLayer, "预览": previewLayer},
                   {collapsed: false}).addTo(map);

  const feature = (geometry, style, name = "") => ({type: "Feature", geometry, properties: {style, name}});

  function drawPreview(footprints, parcels) {
    previewLayer.clearLayers();
    for (const [geometry, style] of footprints) previewLayer.addData(feature(geometry, style));
    for (const [hit, colour] of parcels) {
      previewLayer.addData(feature(hit.geometry, {color: colour, weight: 1, fillColor: colour, fillOpacity: 0.6},
                                   hit.code));
    }
    const bounds = previewLayer.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds, {maxZoom: 17});
  }

  async function loadDistricts() {
    const {districts} = await api("/districts?geometry=true");
    districtLayer.clearLayers();
    districts.forEach(d => districtLayer.addData(feature(d.geometry, {}, d.name)));
    const bounds = districtLayer.getBounds();
    if (bounds.isValid() && !previewLayer.getLayers().length) map.fitBounds(bounds);
  }

  // ------------------------------------------------------------------ projects
  let projects = [];

  async function loadProjects() {
    ({projects} = await api("/projects?geometry=true"));
    projectLayer.clearLayers();
    projects.forEach(p => projectLayer.addData(feature(p.footprint, {}, p.name)));
    for (const select of document.querySelectorAll("select[data-projects]")) {
      const chosen = select.value;
      select.replaceChildren(...projects.map(p => new Option(`${p.name}（${p.code}）`, p.code)));
      if (chosen) select.value = chosen;
    }
    const rows = projects.map(p => {
      const row = document.createElement("tr");
      row.dataset.code = p.code;
      row.innerHTML = `<td></td><td><input type="date" name="freeze_date"></td>
        <td><input type="date" name="deadline"></td>
        <td><button type="button" data-action="dates">保存</button><button type="button" data-action="archive">归档</button></td>`;
      row.cells[0].textContent = `${p.name}（${KIND[p.kind] || p.kind}）`;
      row.querySelector("[name=freeze_date]").value = p.freeze_date || "";
      row.querySelector("[name=deadline]").value = p.deadline || "";
      return row;
    });
    document.getElementById("projects-table").replaceChildren(...rows);
  }

  const ALIGNMENT = ["file", "layer", "width_m", "crs", "where"];
  const FOOTPRINT = {color: "#b00020", weight: 2, fillOpacity: 0.08};
  const BEFORE = {color: "#6b7280", weight: 2, dashArray: "6 4", fillOpacity: 0.03};

  function hitSummary(t) {
    return `涉及地块 ${t.parcels} 宗（${t.households} 户），其中钉子户 ${t.holdouts} 户；` +
      `占地 ${number(t.overlap_m2)} ㎡；估算补偿 ${number(t.estimated_compensation_yuan)} 元`;
  }

  const projectForm = document.getElementById("project-form");
  projectForm.querySelector("[data-action=preview]").addEventListener("click", () => guarded("project-result", async () => {
    const report = await api("/projects/preview", {method: "POST", body: fields(projectForm, ALIGNMENT)});
    drawPreview([[report.query.footprint, FOOTPRINT]], report.parcels.map(h => [h, "#d7301f"]));
    return `预览（未保存）：红线面积 ${number(report.query.footprint_m2)} ㎡（${number(report.query.footprint_mu, 2)} 亩）\n` +
      hitSummary(report.totals);
  }));
  projectForm.addEventListener("submit", event => {
    event.preventDefault();
    guarded("project-result", async () => {
      const project = await api("/projects", {method: "POST", body: fields(projectForm)});
      await loadProjects();
      previewLayer.clearLayers();
      return `已保存项目「${project.name}」（${project.code}）：涉及地块 ${project.parcels} 宗，阻碍 ${project.blocking} 宗`;
    });
  });

  const revisionForm = document.getElementById("revision-form");
  const revisionPath = () => `/projects/${encodeURIComponent(revisionForm.elements.project.value)}/alignment`;
  revisionForm.querySelector("[data-action=preview]").addEventListener("click", () => guarded("revision-result", async () => {
    const diff = await api(revisionPath() + "/preview", {method: "POST", body: fields(revisionForm, [...ALIGNMENT])});
    drawPreview([[diff.footprints.before, BEFORE], [diff.footprints.after, FOOTPRINT]],
                [...diff.entering.map(h => [h, "#d7301f"]), ...diff.leaving.map(h => [h, "#1a9850"])]);
    return `预览（未保存）：第${diff.from_revision}版 → 新线位\n新进入红线 ${diff.entering.length} 宗，移出 ` +
      `${diff.leaving.length} 宗\n占地增加 ${number(diff.overlap_gained_m2)} ㎡，减少 ${number(diff.overlap_lost_m2)} ㎡`;
  }));
  revisionForm.addEventListener("submit", event => {
    event.preventDefault();
    guarded("revision-result", async () => {
      const {revisions} = await api(revisionPath(), {method: "PUT", body: fields(revisionForm)});
      await loadProjects();
      previewLayer.clearLayers();
      return `已保存改线：现为第${revisions[revisions.length - 1].revision}版`;
    });
  });

  document.getElementById("projects-table").addEventListener("click", event => {
    const button = event.target.closest("button");
    if (!button) return;
    const row = button.closest("tr");
    const path = `/projects/${encodeURIComponent(row.dataset.code)}`;
    if (button.dataset.action === "dates") {
      guarded("projects-result", async () => {
        const dates = {};
        for (const name of ["freeze_date", "deadline"]) {
          const value = row.querySelector(`[name=${name}]`).value;
          if (value) dates[name] = value;
        }
        const project = await api(path, json("PATCH", dates));
        return `已保存「${project.name}」：冻结日期 ${project.freeze_date || "无"}，完成节点 ${project.deadline || "无"}`;
      });
    } else if (button.dataset.action === "archive" && window.confirm("归档后项目不再列出，其改线与历史保留。确定归档？")) {
      guarded("projects-result", async () => {
        await api(path, {method: "DELETE"});
        await loadProjects();
        return `已归档 ${row.dataset.code}`;
      });
    }
  });

  // ------------------------------------------------------------------ districts
  const districtsForm = document.getElementById("districts-form");
  async function importDistricts(dryRun) {
    const data = fields(districtsForm, ["file", "layer", "crs"]);
    districtsForm.elements.map.value.split(/\n+/).map(s => s.trim()).filter(Boolean)
      .forEach(line => data.append("map", line));
    data.append("dry_run", dryRun ? "true" : "false");
    const report = await api("/districts/imports", {method: "POST", body: data});
    const c = report.counts;
    if (!dryRun) await loadDistricts();
    return `${dryRun ? "试导入（未保存）" : "已导入"}：片区 ${c.districts} 个（新增 ${c.created}，更新 ${c.updated}，` +
      `未变 ${c.unchanged}）；地块改属 ${c.parcels_moved} 宗，落在片区外 ${c.parcels_outside} 宗` +
      (report.notes.length ? "\n" + report.notes.join("\n") : "");
  }
  districtsForm.querySelector("[data-action=dry-run]").addEventListener(
    "click", () => guarded("districts-result", () => importDistricts(true)));
  districtsForm.addEventListener("submit", event => {
    event.preventDefault();
    guarded("districts-result", () => importDistricts(false));
  });

  // ------------------------------------------------------------------ standards
  async function loadStandards() {
    const {standards} = await api("/standards");
    const rows = standards.map(s => {
      const row = document.createElement("tr");
      for (const text of [s.district_name, s.kind_label, s.item_label, `${number(s.rate_yuan, 2)} ${s.unit_label}`,
                          s.valid_from]) {
        row.insertCell().textContent = text;
      }
      return row;
    });
    document.getElementById("standards-table").replaceChildren(...rows);
  }
  const standardsForm = document.getElementById("standards-form");
  async function importStandards(dryRun) {
    const data = fields(standardsForm, ["file"]);
    data.append("dry_run", dryRun ? "true" : "false");
    const report = await api("/standards/imports", {method: "POST", body: data});
    if (!dryRun) await loadStandards();
    return `${dryRun ? "试导入（未保存）" : "已导入"}：${report.rows} 行，新增 ${report.created}，更正 ${report.corrected}，` +
      `未变 ${report.unchanged}`;
  }
  standardsForm.querySelector("[data-action=dry-run]").addEventListener(
    "click", () => guarded("standards-result", () => importStandards(true)));
  standardsForm.addEventListener("submit", event => {
    event.preventDefault();
    guarded("standards-result", () => importStandards(false));
  });

  // ------------------------------------------------------------------ a file's layers (CAD layers of a DXF)
  for (const input of document.querySelectorAll("input[type=file]")) {
    const select = input.form.elements.layer;
    if (!select) continue;
    input.addEventListener("change", async () => {
      select.replaceChildren(new Option("（自动）", ""));
      if (!input.files.length) return;
      const data = new FormData();
      data.append("file", input.files[0]);
      const result = input.form.nextElementSibling.id;
      try {
        const {layers} = await api("/admin/files/layers", {method: "POST", body: data});
        layers.forEach(l => select.add(new Option(`${l.name || "（无名）"}：线 ${l.lines}，面 ${l.polygons}`, l.name)));
        show(result, `文件含 ${layers.length} 个图层`);
      } catch (error) {
        show(result, error.message, false);
      }
    });
  }

  Promise.all([loadDistricts(), loadProjects(), loadStandards()]).then(
    () => { document.body.dataset.ready = "true"; },
    error => show("project-result", `加载失败：${error.message}`, false));
})();
