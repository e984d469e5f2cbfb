// geosal view: the page. Plain JavaScript over the vendored OpenLayers (ol) and proj4js (proj4).
// Everything it loads comes from this server: /api/... (see the README) and /static/...
'use strict';

const $ = (id) => document.getElementById(id);

const app = {
  info: null,
  scenes: [],
  scene: null,          // the scene shown, as /api/scenes/{id} describes it
  mode: null,           // 'archive' or 'scene'
  map: null,
  projection: null,
  baseLayer: null,      // the scene as the model saw it
  overlayLayer: null,   // the selected saliency layer
  blocksLayer: null,
  markerLayer: null,
  footprintLayer: null,
  graticule: null,
  selected: 'combined',
  settings: {},         // per layer id: colormap, min, max, values, opacity
  swipe: { on: false, position: 50 },
  timer: null,
  tilesDrawn: 0,
  point: null,          // the last clicked map coordinate
  generation: 0,        // bumps on every navigation, so late answers of an old view are dropped
};

function setReady(ready) {
  document.body.dataset.ready = ready ? 'true' : 'false';
}

function showMessage(text) {
  const box = $('message');
  box.textContent = text || '';
  box.hidden = !text;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: 'no-store' });
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    throw new Error(`${url}: ${response.status} ${response.statusText}`);
  }
  if (!response.ok) {
    const failure = new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
    failure.status = response.status;
    throw failure;
  }
  return body;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (Math.abs(value) >= 1e5 || (Math.abs(value) < 1e-3 && value !== 0)) return value.toExponential(3);
  return value.toFixed(digits);
}

function coordinateDigits(scene) {
  return scene && scene.crs && scene.crs.geographic ? 8 : 2;
}

// ---------------------------------------------------------------------------------------------------------------
// start and navigation: #/ (the list of scenes) and #/scene/{id}

async function start() {
  try {
    app.info = await getJSON('/api/info');
  } catch (error) {
    showMessage(`cannot reach the viewer's API: ${error.message}`);
    return;
  }
  app.map = new ol.Map({
    target: 'map',
    layers: [],
    controls: ol.control.defaults.defaults({ attribution: false, rotate: false }).extend([new ol.control.ScaleLine()]),
    view: new ol.View({ center: [0, 0], zoom: 2 }),
  });
  app.map.on('singleclick', onMapClick);
  app.map.on('pointermove', onPointerMove);
  app.map.on('rendercomplete', () => {
    if (app.mode === 'scene' && app.tilesDrawn > 0) setReady(true);
    if (app.mode === 'archive') setReady(true);
  });
  for (const name of app.info.colormaps) $('colormap').append(element('option', { value: name, text: name }));
  setupControls();
  window.addEventListener('hashchange', route);
  await route();
}

async function route() {
  const generation = ++app.generation;
  setReady(false);
  stopTimer();
  showMessage('');
  try {
    app.scenes = await getJSON('/api/scenes');
  } catch (error) {
    showMessage(error.message);
    return;
  }
  if (generation !== app.generation) return;
  const match = location.hash.match(/^#\/scene\/([^/?]+)/);
  if (match) return openScene(decodeURIComponent(match[1]), generation);
  if (!app.info.archive && app.scenes.length === 1) {
    history.replaceState(null, '', `#/scene/${encodeURIComponent(app.scenes[0].id)}`);
    return openScene(app.scenes[0].id, generation);
  }
  return showArchive(generation);
}

function clearMap() {
  for (const layer of app.map.getLayers().getArray().slice()) app.map.removeLayer(layer);
  app.baseLayer = app.overlayLayer = app.blocksLayer = app.markerLayer = app.footprintLayer = null;
  app.tilesDrawn = 0;
  $('point-panel').hidden = true;
  $('swipe-bar').hidden = true;
  app.map.updateSize();
}

function startTimer(callback, slower = 1) {
  stopTimer();
  const seconds = Math.max(0.2, app.info.refresh_seconds || 2) * slower;
  app.timer = window.setInterval(callback, seconds * 1000);
}

function stopTimer() {
  if (app.timer !== null) window.clearInterval(app.timer);
  app.timer = null;
}

function setStatus(scene) {
  const badge = $('status');
  if (!scene) {
    badge.hidden = true;
    $('progress').textContent = '';
    return;
  }
  badge.hidden = false;
  badge.className = `badge ${scene.status}`;
  badge.textContent = scene.status === 'running' ? 'in progress' : scene.status;
  $('progress').textContent = progressText(scene);
  const dashboard = scene.dashboard || app.info.dashboard;
  $('dashboard').hidden = !dashboard;
  if (dashboard) $('dashboard').href = dashboard;
}

function progressText(scene) {
  if (scene.status === 'failed') return scene.error ? `${scene.stage ? scene.stage + ': ' : ''}${scene.error}` : '';
  if (!scene.progress || scene.status !== 'running') return '';
  const p = scene.progress;
  let text = `pass 1: ${p.pass1_done} / ${p.blocks} blocks · pass 2: ${p.pass2_done} / ${p.blocks} chunks`;
  if (p.pass2_done === 0) text += ' (the scale maps show pass 1; combined and Fast-CAM come with pass 2, LOVI when the run completes)';
  if (scene.idle_seconds !== null) {
    const idle = Math.round(scene.idle_seconds);
    text += idle > 600 ? ` · nothing written for ${Math.round(idle / 60)} min (interrupted? geosal run --resume continues it)`
                       : ` · last write ${idle} s ago`;
  }
  return text;
}

// ---------------------------------------------------------------------------------------------------------------
// the list of scenes and their footprints (in longitude / latitude)

function showArchive(generation) {
  app.mode = 'archive';
  app.scene = null;
  $('title').textContent = 'scenes';
  setStatus(null);
  $('dashboard').hidden = !app.info.dashboard;
  if (app.info.dashboard) $('dashboard').href = app.info.dashboard;
  $('archive-panel').hidden = false;
  $('layer-panel').hidden = true;
  clearMap();
  renderSceneList();

  app.projection = ol.proj.get('EPSG:4326');
  const source = new ol.source.Vector();
  app.footprintLayer = new ol.layer.Vector({ source, style: footprintStyle });
  app.graticule = new ol.layer.Graticule({ showLabels: true, strokeStyle: new ol.style.Stroke({ color: 'rgba(255,255,255,0.15)', width: 1 }) });
  app.map.addLayer(app.graticule);
  app.map.addLayer(app.footprintLayer);
  updateFootprints();
  const view = new ol.View({ projection: app.projection, center: [0, 0], zoom: 2 });
  app.map.setView(view);
  const extent = source.getExtent();
  if (source.getFeatures().length && extent.every(Number.isFinite)) {
    view.fit(ol.extent.buffer(extent, Math.max(ol.extent.getWidth(extent), ol.extent.getHeight(extent), 1e-3) * 0.15),
      { padding: [30, 30, 30, 30], maxZoom: 18 });
  }
  app.map.render();
  if (!source.getFeatures().length) setReady(true);
  const signature = (scenes) => JSON.stringify(scenes.map((s) => [s.id, s.status, s.version, s.quicklook, s.error]));
  startTimer(async () => {  // an archive being computed: scenes appear, progress, finish
    try {
      const scenes = await getJSON('/api/scenes');
      if (generation !== app.generation) return;
      const changed = signature(scenes) !== signature(app.scenes);
      app.scenes = scenes;
      if (changed) {
        renderSceneList();
        updateFootprints();
      }
    } catch (error) {
      showMessage(error.message);
    }
  }, 2.5);
}

function updateFootprints() {
  const source = app.footprintLayer.getSource();
  source.clear();
  for (const scene of app.scenes) {
    if (!scene.footprint) continue;
    const feature = new ol.Feature({ geometry: new ol.geom.Polygon([scene.footprint]), name: scene.name, status: scene.status });
    feature.setId(scene.id);
    source.addFeature(feature);
  }
}

function footprintStyle(feature, resolution) {
  const colors = { complete: '#52c27b', running: '#5aa9f2', failed: '#ef5b5b' };
  const color = colors[feature.get('status')] || '#9aa1b2';
  const extent = feature.getGeometry().getExtent();
  const tiny = Math.max(ol.extent.getWidth(extent), ol.extent.getHeight(extent)) / resolution < 10;
  const text = new ol.style.Text({ text: feature.get('name'), overflow: true, offsetY: tiny ? -14 : 0,
    fill: new ol.style.Fill({ color: '#e6e8ee' }), stroke: new ol.style.Stroke({ color: '#000', width: 3 }),
    font: '12px system-ui, sans-serif' });
  if (tiny) {  // too small to see at this zoom: a dot at its centre
    return new ol.style.Style({ geometry: new ol.geom.Point(ol.extent.getCenter(extent)), text,
      image: new ol.style.Circle({ radius: 6, fill: new ol.style.Fill({ color }), stroke: new ol.style.Stroke({ color: '#000', width: 1 }) }) });
  }
  return new ol.style.Style({ stroke: new ol.style.Stroke({ color, width: 2 }), fill: new ol.style.Fill({ color: 'rgba(242,165,65,0.08)' }), text });
}

function renderSceneList() {
  const list = $('scene-list');
  list.replaceChildren();
  const counts = {};
  for (const scene of app.scenes) counts[scene.status] = (counts[scene.status] || 0) + 1;
  $('archive-summary').textContent = `${app.scenes.length} scenes: ` +
    Object.entries(counts).map(([status, n]) => `${n} ${status === 'running' ? 'in progress' : status}`).join(', ');
  for (const scene of app.scenes) {
    const picture = scene.quicklook
      ? element('img', { src: scene.quicklook, alt: `quicklook of ${scene.name}`, loading: 'lazy' })
      : element('div', { class: 'placeholder', text: scene.status === 'running' ? 'in progress: no quicklook yet' : 'no quicklook' });
    const meta = [scene.crs ? scene.crs.name : null, scene.status === 'running' ? progressText(scene) : null].filter(Boolean).join(' · ');
    const item = element('li', { 'data-id': scene.id, title: 'open this scene' },
      picture,
      element('div', { class: 'name', text: scene.name }),
      element('span', { class: `badge ${scene.status}`, text: scene.status === 'running' ? 'in progress' : scene.status }),
      element('div', { class: 'meta', text: meta }));
    if (scene.status === 'failed' && scene.error) item.append(element('div', { class: 'error', text: progressText(scene) }));
    item.tabIndex = 0;
    item.addEventListener('click', () => { location.hash = `#/scene/${encodeURIComponent(scene.id)}`; });
    item.addEventListener('keydown', (event) => { if (event.key === 'Enter') item.click(); });
    list.append(item);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// one scene, in its own CRS

function projectionFor(scene) {
  if (!scene.crs) {
    return new ol.proj.Projection({ code: `geosal-pixels-${scene.id}`, units: 'pixels', extent: scene.bounds });
  }
  const code = scene.crs.code;
  let projection = ol.proj.get(code);
  if (!projection) {
    proj4.defs(code, scene.crs.proj4);
    ol.proj.proj4.register(proj4);
    projection = ol.proj.get(code);
  }
  return projection;
}

async function openScene(id, generation) {
  app.mode = 'scene';
  $('archive-panel').hidden = true;
  clearMap();
  let scene;
  try {
    scene = await getJSON(`/api/scenes/${encodeURIComponent(id)}`);
  } catch (error) {
    showMessage(error.message);
    return;
  }
  if (generation !== app.generation) return;
  app.scene = scene;
  $('title').textContent = scene.name;
  $('home').hidden = !app.info.archive;
  setStatus(scene);
  if (!scene.layers.length) {
    $('layer-panel').hidden = true;
    showMessage(scene.status === 'failed' ? `${scene.name} failed: ${scene.error}` : `${scene.name} has no output yet`);
    setReady(true);
    return;
  }
  $('layer-panel').hidden = false;
  app.projection = projectionFor(scene);
  const view = new ol.View({ projection: app.projection, constrainResolution: false, smoothResolutionConstraint: false,
    maxResolution: maxResolution(scene), minResolution: minResolution(scene) });
  app.map.setView(view);

  const base = layerById('scene');
  $('show-scene').disabled = !base;
  $('scene-layer-title').textContent = base ? base.title : 'Scene (not stored)';
  if (base) {
    app.baseLayer = new ol.layer.Tile({ source: tileSource(base, ''), visible: $('show-scene').checked, zIndex: 0 });
    app.map.addLayer(app.baseLayer);
  }
  if (!layerById(app.selected)) app.selected = 'combined';
  renderLayerList();
  app.overlayLayer = new ol.layer.Tile({ zIndex: 1 });
  app.overlayLayer.on('prerender', clipForSwipe);
  app.overlayLayer.on('postrender', (event) => { if (app.swipe.on) event.context.restore(); });
  app.map.addLayer(app.overlayLayer);
  app.blocksLayer = new ol.layer.Vector({ source: new ol.source.Vector(), style: blockStyle, zIndex: 2,
    visible: scene.status === 'running' });
  app.map.addLayer(app.blocksLayer);
  $('show-blocks').checked = scene.status === 'running';
  $('blocks-row').hidden = !scene.progress || !scene.progress.blocks;
  app.markerLayer = new ol.layer.Vector({ source: new ol.source.Vector(), zIndex: 3, style: new ol.style.Style({
    image: new ol.style.Circle({ radius: 6, stroke: new ol.style.Stroke({ color: '#fff', width: 2 }),
      fill: new ol.style.Fill({ color: 'rgba(242,165,65,0.9)' }) }) }) });
  app.map.addLayer(app.markerLayer);
  selectLayer(app.selected);
  renderRunDetails(scene);
  view.fit(scene.bounds, { padding: [20, 20, 20, 20] });
  updateSwipeBar();
  if (scene.progress && scene.progress.blocks && scene.status === 'running') loadBlocks();
  if (scene.status === 'running') startTimer(() => refreshScene(generation));
}

function layerById(id) {
  return app.scene ? app.scene.layers.find((layer) => layer.id === id) : undefined;
}

function maxResolution(scene) {
  const widest = Math.max(...scene.layers.map((layer) => layer.tiles.resolutions[0]));
  return widest * 8;
}

function minResolution(scene) {
  const finest = Math.min(...scene.layers.map((layer) => layer.tiles.resolutions[layer.tiles.resolutions.length - 1]));
  return finest / 32;
}

function tileSource(layer, query) {
  const tiles = layer.tiles;
  const grid = new ol.tilegrid.TileGrid({ origin: tiles.origin, resolutions: tiles.resolutions, tileSize: tiles.tile_size,
    extent: tiles.extent });
  const source = new ol.source.XYZ({ url: tiles.url + query, tileGrid: grid, projection: app.projection,
    interpolate: false, transition: 0, wrapX: false });
  source.on('tileloadend', () => { app.tilesDrawn += 1; });
  return source;
}

function settingsFor(layer) {
  if (!app.settings[layer.id]) {
    app.settings[layer.id] = { colormap: layer.colormap || app.info.default_colormap, values: 'normalised',
      min: null, max: null, opacity: 80 };
  }
  return app.settings[layer.id];
}

function defaultRange(layer, settings) {
  if (layer.scale && settings.values === 'raw') return layer.scale.raw_range || [0, 10];
  return layer.range || [0, 1];
}

function overlayQuery(layer) {
  if (layer.kind !== 'values') return '';
  const settings = settingsFor(layer);
  const [low, high] = defaultRange(layer, settings);
  const min = settings.min === null ? low : settings.min;
  const max = settings.max === null ? high : settings.max;
  const params = new URLSearchParams({ colormap: settings.colormap, min: String(min), max: String(max) });
  if (layer.scale) params.set('values', settings.values);
  return `&${params}`;
}

function renderLayerList() {
  const list = $('overlay-list');
  for (const old of list.querySelectorAll('label')) old.remove();
  for (const layer of app.scene.layers) {
    if (layer.id === 'scene') continue;
    const input = element('input', { type: 'radio', name: 'overlay', value: layer.id, checked: layer.id === app.selected });
    input.addEventListener('change', () => selectLayer(layer.id));
    list.append(element('label', { 'data-layer': layer.id, title: layer.description }, input, ` ${layer.title}`));
  }
}

function selectLayer(id) {
  const layer = layerById(id);
  if (!layer) return;
  app.selected = id;
  const radio = document.querySelector(`#overlay-list input[value="${CSS.escape(id)}"]`);
  if (radio) radio.checked = true;
  const settings = settingsFor(layer);
  const isValues = layer.kind === 'values';
  for (const control of document.querySelectorAll('.value-control')) control.hidden = !isValues;
  for (const control of document.querySelectorAll('.scale-control')) control.hidden = !layer.scale;
  $('colormap').value = settings.colormap;
  $('values').value = settings.values;
  const [low, high] = defaultRange(layer, settings);
  $('range-min').value = settings.min === null ? low : settings.min;
  $('range-max').value = settings.max === null ? high : settings.max;
  $('opacity').value = settings.opacity;
  $('opacity-value').textContent = `${settings.opacity} %`;
  app.overlayLayer.setOpacity(settings.opacity / 100);
  app.overlayLayer.setSource(tileSource(layer, overlayQuery(layer)));
  renderLegend(layer);
}

function updateOverlay() {
  const layer = layerById(app.selected);
  if (!layer) return;
  app.overlayLayer.getSource().setUrl(layer.tiles.url + overlayQuery(layer));
  renderLegend(layer);
}

function renderLegend(layer) {
  const legend = $('legend');
  legend.replaceChildren();
  legend.dataset.layer = layer.id;
  if (layer.kind === 'values') {
    const settings = settingsFor(layer);
    const [low, high] = defaultRange(layer, settings);
    const min = settings.min === null ? low : settings.min;
    const max = settings.max === null ? high : settings.max;
    legend.append(element('img', { src: `/api/legends/${encodeURIComponent(settings.colormap)}.png`, alt: `${settings.colormap} colour bar` }));
    legend.append(element('div', { class: 'ticks' }, element('span', { text: formatNumber(min, 3) }),
      element('span', { text: formatNumber((min + max) / 2, 3) }), element('span', { text: formatNumber(max, 3) })));
    let text = layer.description;
    if (layer.scale) {
      text += settings.values === 'raw' ? ' Shown: the raw statistic.' : ' Shown: normalised (0 to 1).';
      if (layer.scale.mean !== null) text += ` Scene mean ${formatNumber(layer.scale.mean, 3)}, std ${formatNumber(layer.scale.std, 3)}.`;
    }
    legend.append(element('p', { text }));
  } else if (layer.kind === 'rgba') {
    legend.append(element('img', { class: 'lovi', src: layer.legend, alt: 'LOVI legend' }));
    const scales = app.scene.layers.filter((candidate) => candidate.scale);
    const ticks = element('div', { class: 'scale-ticks' });
    scales.forEach((scale, index) => {
      const position = scales.length > 1 ? (100 * index) / (scales.length - 1) : 0;
      ticks.append(element('span', { text: `s${scale.scale.index}`, title: scale.title, style: `left: ${Math.min(96, Math.max(4, position))}%` }));
    });
    legend.append(ticks);
    legend.append(element('p', { text: 'Hue (across): the scale that responds, from the finest (violet, left) to the coarsest (red, right).' }));
    legend.append(element('p', { text: 'Saturation (down): how much one scale dominates (top) or all respond alike (bottom, white).' }));
    legend.append(element('p', { text: 'Value (bottom strip): the strongest normalised response, black = none.' }));
  } else {
    legend.append(element('p', { text: layer.description }));
  }
}

function renderRunDetails(scene) {
  const list = $('run-details');
  list.replaceChildren();
  const run = scene.run || {};
  const model = run.model || {};
  const rows = [
    ['CRS', scene.crs ? `${scene.crs.name} (${scene.crs.code})` : 'none (pixel coordinates)'],
    ['model', [model.architecture, model.weights].filter(Boolean).join(', ')],
    ['statistic', run.statistic],
    ['weights', run.weights ? run.weights.map((w) => formatNumber(w, 2)).join(', ') : null],
    ['tile / halo / block', [run.tile, run.halo, run.block].join(' / ')],
    ['source', scene.source],
    ['completed', run.completed],
    ['notes', run.notes && run.notes.length ? run.notes.join('; ') : null],
  ];
  for (const [name, value] of rows) {
    if (value === null || value === undefined || value === '') continue;
    list.append(element('dt', { text: name }), element('dd', { text: String(value) }));
  }
}

async function refreshScene(generation) {
  let scene;
  try {
    scene = await getJSON(`/api/scenes/${encodeURIComponent(app.scene.id)}`);
  } catch (error) {
    showMessage(error.message);
    return;
  }
  if (generation !== app.generation || isTransient(scene)) return;
  const changed = scene.version !== app.scene.version;
  const ids = (s) => s.layers.map((layer) => layer.id).join(',');
  const newLayers = ids(scene) !== ids(app.scene);  // LOVI arrives with the COGs when the run completes
  app.scene = scene;
  setStatus(scene);
  if (newLayers) renderLayerList();
  if (changed) {
    if (app.baseLayer && layerById('scene')) app.baseLayer.setSource(tileSource(layerById('scene'), ''));
    const layer = layerById(app.selected);
    if (layer) {
      const previous = app.overlayLayer.getSource();
      const grid = previous && previous.getTileGrid();
      const sameGrid = grid && grid.getResolutions().length === layer.tiles.resolutions.length &&
        grid.getOrigin(0).every((value, i) => value === layer.tiles.origin[i]);
      if (sameGrid) updateOverlay(); else selectLayer(layer.id);
    }
    if (app.blocksLayer.getVisible()) loadBlocks();
    if (app.point) showPoint(app.point);
  }
  if (scene.status !== 'running') stopTimer();
}

// While a run renames its partial folder or rewrites its store's metadata, the viewer can briefly find no output
// ('pending') or an unreadable one (a failure at the 'viewer' stage): the page waits for the next refresh.
function isTransient(scene) {
  return scene.status === 'pending' || (scene.status === 'failed' && scene.stage === 'viewer');
}

// ---------------------------------------------------------------------------------------------------------------
// blocks (a run's progress)

async function loadBlocks() {
  try {
    const collection = await getJSON(`/api/scenes/${encodeURIComponent(app.scene.id)}/blocks`);
    const features = new ol.format.GeoJSON().readFeatures(collection, { dataProjection: app.projection, featureProjection: app.projection });
    const source = app.blocksLayer.getSource();
    source.clear();
    source.addFeatures(features);
  } catch (error) {
    showMessage(error.message);
  }
}

function blockStyle(feature) {
  if (feature.get('pass2')) return new ol.style.Style({ stroke: new ol.style.Stroke({ color: 'rgba(82,194,123,0.7)', width: 1 }) });
  if (feature.get('pass1')) {
    return new ol.style.Style({ stroke: new ol.style.Stroke({ color: 'rgba(90,169,242,0.9)', width: 1.5 }),
      fill: new ol.style.Fill({ color: 'rgba(90,169,242,0.08)' }) });
  }
  return new ol.style.Style({ stroke: new ol.style.Stroke({ color: 'rgba(154,161,178,0.6)', width: 1, lineDash: [4, 4] }),
    fill: new ol.style.Fill({ color: 'rgba(13,15,19,0.45)' }) });
}

// ---------------------------------------------------------------------------------------------------------------
// controls: opacity, colormap, range, values, swipe, blocks

function setupControls() {
  $('show-scene').addEventListener('change', () => { if (app.baseLayer) app.baseLayer.setVisible($('show-scene').checked); });
  $('opacity').addEventListener('input', () => {
    const layer = layerById(app.selected);
    if (!layer) return;
    settingsFor(layer).opacity = Number($('opacity').value);
    $('opacity-value').textContent = `${$('opacity').value} %`;
    app.overlayLayer.setOpacity(Number($('opacity').value) / 100);
  });
  $('colormap').addEventListener('change', () => {
    const layer = layerById(app.selected);
    settingsFor(layer).colormap = $('colormap').value;
    updateOverlay();
  });
  $('values').addEventListener('change', () => {
    const layer = layerById(app.selected);
    const settings = settingsFor(layer);
    settings.values = $('values').value;
    settings.min = settings.max = null;
    selectLayer(layer.id);
  });
  for (const id of ['range-min', 'range-max']) {
    $(id).addEventListener('change', () => {
      const layer = layerById(app.selected);
      const settings = settingsFor(layer);
      const min = Number($('range-min').value);
      const max = Number($('range-max').value);
      if (!Number.isFinite(min) || !Number.isFinite(max)) return;
      settings.min = min;
      settings.max = max;
      updateOverlay();
    });
  }
  $('range-reset').addEventListener('click', () => {
    const layer = layerById(app.selected);
    const settings = settingsFor(layer);
    settings.min = settings.max = null;
    selectLayer(layer.id);
  });
  $('swipe-toggle').addEventListener('change', () => {
    app.swipe.on = $('swipe-toggle').checked;
    $('swipe').disabled = !app.swipe.on;
    updateSwipeBar();
  });
  $('swipe').addEventListener('input', () => {
    app.swipe.position = Number($('swipe').value);
    updateSwipeBar();
  });
  const bar = $('swipe-bar');
  bar.addEventListener('pointerdown', (event) => {
    bar.setPointerCapture(event.pointerId);
    const move = (moveEvent) => {
      const box = $('map-wrap').getBoundingClientRect();
      app.swipe.position = Math.min(100, Math.max(0, (100 * (moveEvent.clientX - box.left)) / box.width));
      $('swipe').value = app.swipe.position;
      updateSwipeBar();
    };
    const up = () => { bar.removeEventListener('pointermove', move); bar.removeEventListener('pointerup', up); };
    bar.addEventListener('pointermove', move);
    bar.addEventListener('pointerup', up);
  });
  $('show-blocks').addEventListener('change', () => {
    app.blocksLayer.setVisible($('show-blocks').checked);
    if ($('show-blocks').checked) loadBlocks();
  });
  $('point-close').addEventListener('click', () => {
    $('point-panel').hidden = true;
    app.point = null;
    if (app.markerLayer) app.markerLayer.getSource().clear();
    app.map.updateSize();
  });
}

function updateSwipeBar() {
  const bar = $('swipe-bar');
  bar.hidden = !(app.swipe.on && app.mode === 'scene');
  bar.style.left = `${app.swipe.position}%`;
  if (app.map) app.map.render();
}

function clipForSwipe(event) {
  if (!app.swipe.on) return;
  const context = event.context;
  const size = app.map.getSize();
  const left = (size[0] * app.swipe.position) / 100;
  const corners = [[left, 0], [size[0], 0], [size[0], size[1]], [left, size[1]]].map((pixel) => ol.render.getRenderPixel(event, pixel));
  context.save();
  context.beginPath();
  context.moveTo(...corners[0]);
  for (const corner of corners.slice(1)) context.lineTo(...corner);
  context.closePath();
  context.clip();
}

// ---------------------------------------------------------------------------------------------------------------
// pointer position and the values at a clicked point

function onPointerMove(event) {
  if (event.dragging || !app.projection) return;
  const [x, y] = event.coordinate;
  let text = '';
  if (app.mode === 'scene' && app.scene) {
    const digits = coordinateDigits(app.scene);
    text = `${app.scene.crs ? app.scene.crs.code : 'pixels'}  x ${x.toFixed(digits)}  y ${y.toFixed(digits)}`;
    if (app.scene.crs) {
      const lonlat = lonLatAt(app.scene.lonlat_grid, x, y);
      if (lonlat) text += `   lon ${lonlat[0].toFixed(6)}  lat ${lonlat[1].toFixed(6)}`;
    }
  } else {
    text = `lon ${x.toFixed(5)}  lat ${y.toFixed(5)}`;
  }
  $('cursor').textContent = text;
}

// Longitude / latitude of map coordinates, interpolated (bilinearly; linearly beyond the scene) in the grid the
// server computed with PROJ, so the cursor agrees with the point panel even where proj4js lacks a datum shift.
function lonLatAt(grid, x, y) {
  if (!grid) return null;
  const n = grid.x.length;
  const fx = ((x - grid.x[0]) / (grid.x[n - 1] - grid.x[0])) * (n - 1);
  const fy = ((y - grid.y[0]) / (grid.y[n - 1] - grid.y[0])) * (n - 1);
  const i = Math.min(n - 2, Math.max(0, Math.floor(fy)));
  const j = Math.min(n - 2, Math.max(0, Math.floor(fx)));
  const ty = fy - i;
  const tx = fx - j;
  const blend = (v) => (v[i][j] * (1 - tx) + v[i][j + 1] * tx) * (1 - ty) + (v[i + 1][j] * (1 - tx) + v[i + 1][j + 1] * tx) * ty;
  const lon = blend(grid.lon);
  const lat = blend(grid.lat);
  return Number.isFinite(lon) && Number.isFinite(lat) ? [lon, lat] : null;
}

function onMapClick(event) {
  if (app.mode === 'archive') {
    const feature = app.map.forEachFeatureAtPixel(event.pixel, (found) => found, { layerFilter: (layer) => layer === app.footprintLayer });
    if (feature) location.hash = `#/scene/${encodeURIComponent(feature.getId())}`;
    return;
  }
  if (app.mode === 'scene' && app.scene) showPoint(event.coordinate);
}

async function showPoint(coordinate) {
  app.point = coordinate;
  const source = app.markerLayer.getSource();
  source.clear();
  source.addFeature(new ol.Feature(new ol.geom.Point(coordinate)));
  const panel = $('point-panel');
  const wasHidden = panel.hidden;
  panel.hidden = false;
  if (wasHidden) app.map.updateSize();
  const [x, y] = coordinate;
  const scene = app.scene;
  let point;
  try {
    point = await getJSON(`/api/scenes/${encodeURIComponent(scene.id)}/point?x=${x}&y=${y}`);
  } catch (error) {
    renderPointError(error);
    return;
  }
  if (app.point !== coordinate) return;
  renderPoint(point, scene);
}

function setValue(id, value, text) {
  const node = $(id);
  node.textContent = text;
  node.dataset.value = value === null || value === undefined ? 'null' : String(value);
}

function renderPointError(error) {
  for (const id of ['point-x', 'point-y', 'point-lon', 'point-lat', 'point-row', 'point-col']) setValue(id, null, '—');
  $('point-values').replaceChildren();
  $('point-chart').replaceChildren();
  $('point-note').textContent = error.status === 404 ? `Outside the scene: ${error.message}` : error.message;
  $('point-panel').dataset.loaded = 'error';
}

function renderPoint(point, scene) {
  const digits = coordinateDigits(scene);
  $('point-crs-name').textContent = scene.crs ? `x, y (${scene.crs.code})` : 'x, y (pixels)';
  setValue('point-x', point.x, point.x.toFixed(digits));
  setValue('point-y', point.y, point.y.toFixed(digits));
  setValue('point-lon', point.lon, point.lon === null ? '—' : point.lon.toFixed(6));
  setValue('point-lat', point.lat, point.lat === null ? '—' : point.lat.toFixed(6));
  setValue('point-row', point.row, String(point.row));
  setValue('point-col', point.col, String(point.col));

  const table = $('point-values');
  table.replaceChildren();
  const values = point.values;
  const addRow = (id, name, value, text, extra) => {
    const cell = element('td', { id, 'data-value': value === null || value === undefined ? 'null' : String(value) });
    if (extra) cell.append(extra);
    cell.append(text);
    table.append(element('tr', {}, element('th', { text: name }), cell));
  };
  addRow('point-combined', 'combined', values.combined, formatNumber(values.combined));
  if ('fast_cam' in values) addRow('point-fast_cam', 'Fast-CAM', values.fast_cam, formatNumber(values.fast_cam));
  if ('cam_normalised' in values) addRow('point-cam', 'Grad-CAM (normalised)', values.cam_normalised, formatNumber(values.cam_normalised));
  if ('valid' in values) addRow('point-valid', 'valid data', values.valid, values.valid === null ? '—' : values.valid ? 'yes' : 'no (nodata)');
  if (values.lovi) {
    const [r, g, b, a] = values.lovi;
    addRow('point-lovi', 'LOVI', values.lovi.join(','), a ? `rgb(${r}, ${g}, ${b})` : 'nodata',
      element('span', { class: 'swatch', style: `background: rgba(${r},${g},${b},${a / 255})` }));
  }
  if (values.scene) {
    const rgb = values.scene.length >= 3 ? values.scene.slice(0, 3) : [values.scene[0], values.scene[0], values.scene[0]];
    addRow('point-scene', 'scene (model input)', values.scene.join(','), values.scene.join(', '),
      element('span', { class: 'swatch', style: `background: rgb(${rgb.join(',')})` }));
  }
  renderChart(point.scales);
  const provisional = point.statistics && point.statistics.provisional;
  $('point-note').textContent = provisional
    ? 'Normalised with the statistics of the blocks done so far (the run is in progress).'
    : point.statistics ? 'Normalised with the scene-wide statistics (normal CDF), as in the combined map.' : 'No statistics yet.';
  $('point-panel').dataset.loaded = 'true';
}

function renderChart(scales) {
  const chart = $('point-chart');
  chart.replaceChildren();
  const ns = 'http://www.w3.org/2000/svg';
  const width = 260;
  const height = 150;
  const top = 14;
  const bottom = 36;
  const slot = width / Math.max(1, scales.length);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  const svgElement = (tag, attributes, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  const plot = height - top - bottom;
  svgElement('line', { x1: 0, x2: width, y1: top + plot, y2: top + plot, stroke: '#343946' });
  svgElement('line', { x1: 0, x2: width, y1: top, y2: top, stroke: '#343946', 'stroke-dasharray': '2 3' });
  const hue = (index) => (scales.length > 1 ? 300 * (1 - index / (scales.length - 1)) : 300);
  scales.forEach((scale, index) => {
    const value = scale.normalised;
    const barHeight = value === null ? 0 : plot * Math.min(1, Math.max(0, value));
    const x = index * slot + slot * 0.2;
    const group = document.createElementNS(ns, 'g');
    group.setAttribute('class', 'point-scale');
    group.setAttribute('data-index', String(scale.index));
    group.setAttribute('data-normalised', value === null ? 'null' : String(value));
    group.setAttribute('data-raw', scale.raw === null ? 'null' : String(scale.raw));
    svg.append(group);
    const rect = document.createElementNS(ns, 'rect');
    for (const [key, attribute] of Object.entries({ x, y: top + plot - barHeight, width: slot * 0.6, height: barHeight,
      fill: `hsl(${hue(index)}, 80%, 60%)` })) rect.setAttribute(key, attribute);
    const title = document.createElementNS(ns, 'title');
    title.textContent = `${scale.module} (stride ${scale.stride}): normalised ${formatNumber(value)}, raw ${formatNumber(scale.raw)}`;
    rect.append(title);
    group.append(rect);
    const label = (y, text, cls) => {
      const node = document.createElementNS(ns, 'text');
      node.setAttribute('x', index * slot + slot / 2);
      node.setAttribute('y', y);
      node.setAttribute('text-anchor', 'middle');
      if (cls) node.setAttribute('class', cls);
      node.textContent = text;
      group.append(node);
      return node;
    };
    label(top + plot - barHeight - 3, value === null ? '—' : value.toFixed(2), 'normalised');
    label(top + plot + 13, `×${scale.stride}`);
    label(top + plot + 27, formatNumber(scale.raw, 2), 'raw');
  });
  chart.append(svg);
}

start();
