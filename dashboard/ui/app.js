// SPDX-License-Identifier: AGPL-3.0-or-later
//
// The hypervisor dashboard: one page over hvd's REST API and its live
// feed (GET /api/v1/feed, Server-Sent Events).  Signs in by trading an
// API token for a session cookie; sends the session's CSRF token on
// every request that changes something.  Everything it shows is set as
// text (textContent), never as markup, so names and descriptions from the
// inventory stay inert.  A read session gets no action buttons.
'use strict';

const HISTORY = 120;		// samples kept per host for the charts
const state = {
	session: null,		// {role, csrf, token_id}
	hosts: new Map(),	// name -> {row, hist: [{t, cpu, mem}]}
	vms: [], networks: [], events: [], status: null,
	feed: null, reloadTimer: null,
};

// --- small helpers ---------------------------------------------------------

function $(id) { return document.getElementById(id); }

// el('td', {class: 'up'}, 'text', child...): an element with text only.
function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
		else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
	}
	for (const k of kids.flat()) {
		if (k === null || k === undefined || k === false) continue;
		e.append(k instanceof Node ? k : document.createTextNode(String(k)));
	}
	return e;
}

function problem(msg) {
	const p = $('problem');
	p.textContent = msg || '';
	p.hidden = !msg;
}

function bytes(n) {
	if (n === undefined || n === null) return '–';
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
	return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}

function pct(n) { return n === undefined || n === null ? '–' : n.toFixed(1) + ' %'; }

class ApiError extends Error {
	constructor(status, msg) { super(msg); this.status = status; }
}

// api(METHOD, PATH, BODY): the reply's JSON; throws ApiError with hvd's
// own explanation (its "error" field) when hvd refuses.
async function api(method, path, body) {
	const headers = {};
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (method !== 'GET' && state.session && state.session.csrf)
		headers['X-CSRF-Token'] = state.session.csrf;
	const r = await fetch(path, {
		method, headers, credentials: 'same-origin',
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	let j = null;
	try { j = await r.json(); } catch (e) { j = null; }
	if (!r.ok)
		throw new ApiError(r.status, (j && j.error) || `${method} ${path}: HTTP ${r.status}`);
	return j;
}

const canAct = () => state.session && state.session.role === 'admin';

// act(label, fn): runs an action, shows hvd's refusal if any.
async function act(fn) {
	try {
		problem('');
		await fn();
		await loadLists();
	} catch (e) {
		problem(e.message);
		if (e.status === 401) signedOut();
	}
}

// --- signing in and out ----------------------------------------------------

function signedOut() {
	state.session = null;
	if (state.feed) { state.feed.close(); state.feed = null; }
	$('nav').hidden = true;
	$('signout').hidden = true;
	$('who').textContent = '';
	$('view').replaceChildren();
	$('login').hidden = false;
	$('live').textContent = 'offline';
}

async function signedIn(s) {
	state.session = s;
	$('login').hidden = true;
	$('nav').hidden = false;
	$('signout').hidden = false;
	$('who').textContent = `signed in: ${s.role}`;
	await loadAll();
	startFeed();
	render();
}

async function boot() {
	$('login').addEventListener('submit', async (ev) => {
		ev.preventDefault();
		const tok = $('token');
		try {
			problem('');
			const s = await api('POST', '/api/v1/session', { token: tok.value.trim() });
			tok.value = '';
			await signedIn(s);
		} catch (e) {
			problem(e.message);
		}
	});
	$('signout').addEventListener('click', async () => {
		try { await api('DELETE', '/api/v1/session'); } catch (e) { /* gone already */ }
		signedOut();
	});
	window.addEventListener('hashchange', render);
	try {
		const s = await api('GET', '/api/v1/session');
		if (s.session) await signedIn(s);
		else signedOut();
	} catch (e) {
		signedOut();
	}
}

// --- data ------------------------------------------------------------------

function hostEntry(name) {
	let h = state.hosts.get(name);
	if (!h) { h = { row: { name }, hist: [] }; state.hosts.set(name, h); }
	return h;
}

function pushSample(h, live) {
	if (!live || live.cpu_percent === undefined) return;
	const mem = live.memory_total_bytes ? 100 * live.memory_used_bytes / live.memory_total_bytes : 0;
	h.hist.push({ cpu: live.cpu_percent, mem });
	if (h.hist.length > HISTORY) h.hist.splice(0, h.hist.length - HISTORY);
}

async function loadLists() {
	const [hosts, vms, nets, evs] = await Promise.all([
		api('GET', '/api/v1/hosts'), api('GET', '/api/v1/vms'),
		api('GET', '/api/v1/networks'), api('GET', '/api/v1/events?limit=200'),
	]);
	const seen = new Set();
	for (const row of hosts.hosts) {
		const key = row.name || row.fingerprint;
		seen.add(key);
		hostEntry(key).row = row;
	}
	for (const k of [...state.hosts.keys()]) if (!seen.has(k)) state.hosts.delete(k);
	state.vms = vms.vms;
	state.networks = nets.networks;
	state.events = evs.events;
	render();
}

async function loadAll() {
	const [ver, status] = await Promise.all([api('GET', '/api/v1/version'), api('GET', '/api/v1/status')]);
	$('version').textContent = ver.version;
	state.status = status;
	await loadLists();
	// The charts start from the history hvd keeps.
	await Promise.all([...state.hosts.values()].filter((h) => h.row.name && h.row.live).map(async (h) => {
		try {
			const t = await api('GET', `/api/v1/hosts/${encodeURIComponent(h.row.name)}/telemetry`);
			h.hist = t.history.map((s) => ({
				cpu: s.cpu_percent,
				mem: s.memory_total_bytes ? 100 * s.memory_used_bytes / s.memory_total_bytes : 0,
			})).slice(-HISTORY);
		} catch (e) { /* no telemetry yet */ }
	}));
}

function reloadSoon() {
	clearTimeout(state.reloadTimer);
	state.reloadTimer = setTimeout(() => act(async () => {
		state.status = await api('GET', '/api/v1/status');
	}), 300);
}

function startFeed() {
	if (state.feed) state.feed.close();
	const f = new EventSource('/api/v1/feed');
	state.feed = f;
	f.onopen = () => { $('live').textContent = 'live'; };
	f.onerror = async () => {
		$('live').textContent = 'reconnecting';
		if (f.readyState === EventSource.CLOSED) {
			// Refused, not dropped: is the session still there?
			try {
				const s = await api('GET', '/api/v1/session');
				if (s.session) startFeed();
			} catch (e) {
				signedOut();
				problem(e.message);
			}
		}
	};
	f.addEventListener('telemetry', (ev) => {
		for (const live of JSON.parse(ev.data).hosts) {
			const h = hostEntry(live.name);
			h.row.live = live;
			pushSample(h, live);
		}
		renderLive();
	});
	f.addEventListener('host', (ev) => {
		const d = JSON.parse(ev.data);
		const h = hostEntry(d.name);
		if (h.row.live) h.row.live.up = d.up;
		renderLive();
	});
	f.addEventListener('event', (ev) => {
		state.events.unshift(JSON.parse(ev.data));
		if (state.events.length > 500) state.events.length = 500;
		if (route()[0] === 'events') render();
	});
	f.addEventListener('changed', reloadSoon);
	f.addEventListener('reset', () => act(loadAll));
}

// --- views -------------------------------------------------------------------

function route() {
	const parts = (location.hash || '#/fleet').slice(2).split('/').map(decodeURIComponent);
	return parts[0] ? parts : ['fleet'];
}

// chart(values, cls): an SVG polyline of 0..100 values.
function chart(values, cls) {
	const ns = 'http://www.w3.org/2000/svg';
	const svg = document.createElementNS(ns, 'svg');
	svg.setAttribute('class', 'chart');
	svg.setAttribute('viewBox', `0 0 ${HISTORY - 1} 100`);
	svg.setAttribute('preserveAspectRatio', 'none');
	const line = document.createElementNS(ns, 'polyline');
	if (cls) line.setAttribute('class', cls);
	const off = HISTORY - values.length;
	line.setAttribute('points', values.map((v, i) =>
		`${off + i},${(100 - Math.max(0, Math.min(100, v))).toFixed(1)}`).join(' '));
	svg.append(line);
	return svg;
}

function hostUp(h) { return h.row.live ? h.row.live.up : false; }

function hostCard(h) {
	const live = h.row.live || {};
	const name = h.row.name || h.row.fingerprint;
	return el('div', { class: 'card', 'data-host': name },
		el('h2', {}, el('a', { href: `#/host/${encodeURIComponent(name)}` }, name), ' ',
			el('span', { class: hostUp(h) ? 'up' : 'down' }, hostUp(h) ? 'up' : h.row.state),
			h.row.draining ? el('span', { class: 'muted' }, ' draining') : null),
		el('div', { class: 'legend' }, `CPU ${pct(live.cpu_percent)}`),
		chart(h.hist.map((s) => s.cpu)),
		el('div', { class: 'legend' }, `memory ${bytes(live.memory_used_bytes)} of ${bytes(live.memory_total_bytes)}`),
		chart(h.hist.map((s) => s.mem), 'mem'),
		el('div', { class: 'legend' }, `${state.vms.filter((v) => v.host === h.row.name).length} VMs · load ${live.load1 ?? '–'}`));
}

function viewFleet() {
	const hosts = [...state.hosts.values()];
	if (!hosts.length)
		return el('p', {}, 'No hosts yet: hvctl host add NAME, or boot one from the network.');
	return el('div', { class: 'cards', id: 'fleet' }, hosts.map(hostCard));
}

function kv(rows) {
	return el('table', {}, rows.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v ?? '–'))));
}

function viewHost(name) {
	const h = state.hosts.get(name);
	if (!h) return el('p', {}, `No host ${name}.`);
	const r = h.row;
	return el('div', {},
		el('h1', {}, name),
		el('div', { class: 'cards' }, hostCard(h)),
		el('h2', {}, 'Identity'),
		kv([['state', r.state], ['draining', String(!!r.draining)], ['boot MAC', r.boot_mac],
			['underlay', r.underlay_ip], ['boot address', r.boot_ip], ['product', r.product],
			['serial', r.serial], ['fingerprint', r.fingerprint], ['overlay', r.overlay],
			['booted', r.boot_at], ['last seen', r.last_seen_at]]),
		el('h2', {}, 'VMs'),
		vmTable(state.vms.filter((v) => v.host === name)));
}

function vmButtons(v) {
	if (!canAct()) return [];
	const post = (what) => () => act(() => api('POST', `/api/v1/vms/${encodeURIComponent(v.name)}/${what}`));
	const b = (label, fn) => el('button', { type: 'button', 'data-action': label, on: { click: fn } }, label);
	return [
		v.desired === 'running' ? b('stop', post('stop')) : b('start', post('start')),
		b('reboot', post('reboot')),
		b('destroy', () => {
			if (confirm(`Destroy VM ${v.name}? Its definition is removed.`))
				act(() => api('DELETE', `/api/v1/vms/${encodeURIComponent(v.name)}`));
		}),
	];
}

function vmTable(vms) {
	if (!vms.length) return el('p', { class: 'muted' }, 'No VMs.');
	return el('table', { id: 'vms' },
		el('tr', {}, ['name', 'state', 'desired', 'host', 'vCPUs', 'memory', 'reason', ''].map((t) => el('th', {}, t))),
		vms.map((v) => el('tr', { 'data-vm': v.name },
			el('td', {}, v.name), el('td', { class: v.state === 'running' ? 'up' : '' }, v.state),
			el('td', {}, v.desired), el('td', {}, v.host ?? '–'), el('td', {}, v.vcpus),
			el('td', {}, `${v.memory_mib} MiB`), el('td', { class: 'muted' }, v.reason),
			el('td', {}, vmButtons(v)))));
}

function createVmForm() {
	const f = el('form', { id: 'vm-create' },
		el('h2', {}, 'New VM'),
		el('label', {}, 'name ', el('input', { name: 'name', required: true, size: 12 })), ' ',
		el('label', {}, 'vCPUs ', el('input', { name: 'vcpus', type: 'number', value: 1, min: 1, size: 3 })), ' ',
		el('label', {}, 'memory MiB ', el('input', { name: 'memory_mib', type: 'number', value: 128, min: 16, size: 5 })), ' ',
		el('label', {}, 'kernel ', el('input', { name: 'kernel', size: 14 })), ' ',
		el('label', {}, 'VNI ', el('input', { name: 'vni', type: 'number', size: 6 })), ' ',
		el('button', { type: 'submit' }, 'Create'));
	f.addEventListener('submit', (ev) => {
		ev.preventDefault();
		const d = new FormData(f);
		const spec = { name: d.get('name'), vcpus: Number(d.get('vcpus')), memory_mib: Number(d.get('memory_mib')) };
		if (d.get('kernel')) spec.kernel = d.get('kernel');
		if (d.get('vni')) spec.networks = [{ vni: Number(d.get('vni')) }];
		act(() => api('POST', '/api/v1/vms', spec));
	});
	return f;
}

function viewVms() {
	return el('div', {}, el('h1', {}, 'VMs'), vmTable(state.vms), canAct() ? createVmForm() : null);
}

function viewNetworks() {
	const table = el('table', { id: 'networks' },
		el('tr', {}, ['name', 'VNI', 'description', 'all hosts', 'created', ''].map((t) => el('th', {}, t))),
		state.networks.map((n) => el('tr', { 'data-net': n.name },
			el('td', {}, n.name), el('td', {}, n.vni), el('td', { class: 'desc' }, n.description),
			el('td', {}, n.all_hosts ? 'yes' : 'no'), el('td', {}, n.created_at),
			el('td', {}, canAct() ? el('button', { type: 'button', 'data-action': 'delete', on: { click: () => {
				if (confirm(`Delete network ${n.name}?`))
					act(() => api('DELETE', `/api/v1/networks/${encodeURIComponent(n.name)}`));
			} } }, 'delete') : null))));
	let form = null;
	if (canAct()) {
		form = el('form', { id: 'net-create' }, el('h2', {}, 'New network'),
			el('label', {}, 'name ', el('input', { name: 'name', required: true, size: 12 })), ' ',
			el('label', {}, 'VNI ', el('input', { name: 'vni', type: 'number', required: true, size: 6 })), ' ',
			el('label', {}, 'description ', el('input', { name: 'description', size: 24 })), ' ',
			el('button', { type: 'submit' }, 'Create'));
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			const d = new FormData(form);
			const body = { name: d.get('name'), vni: Number(d.get('vni')) };
			if (d.get('description')) body.description = d.get('description');
			act(() => api('POST', '/api/v1/networks', body));
		});
	}
	return el('div', {}, el('h1', {}, 'Networks'), table, form);
}

function viewBoot() {
	const b = (state.status && state.status.boot) || {};
	return el('div', {}, el('h1', {}, 'Boot'),
		kv([['boot root', b.root], ['boot URL', b.url]]),
		el('h2', {}, 'Files'),
		el('table', { id: 'boot-files' },
			el('tr', {}, ['file', 'present', 'size', 'changed', 'source'].map((t) => el('th', {}, t))),
			(b.files || []).map((f) => el('tr', {}, el('td', {}, f.name),
				el('td', { class: f.present ? 'up' : 'down' }, f.present ? 'yes' : 'missing'),
				el('td', {}, f.present ? bytes(f.size) : '–'), el('td', {}, f.mtime ?? '–'),
				el('td', { class: 'muted' }, f.source ?? '')))));
}

function viewEvents() {
	return el('div', {}, el('h1', {}, 'Events'),
		el('table', { id: 'events' },
			el('tr', {}, ['time', 'kind', 'subject', 'actor', 'detail'].map((t) => el('th', {}, t))),
			state.events.map((e) => el('tr', {}, el('td', {}, e.time), el('td', {}, e.kind),
				el('td', {}, e.subject), el('td', { class: 'muted' }, e.actor), el('td', {}, e.detail)))));
}

function render() {
	if (!state.session) return;
	const r = route();
	for (const a of document.querySelectorAll('#nav a'))
		a.classList.toggle('here', a.getAttribute('href') === `#/${r[0] === 'host' ? 'fleet' : r[0]}`);
	const views = {
		fleet: viewFleet, host: () => viewHost(r[1] || ''), vms: viewVms,
		networks: viewNetworks, boot: viewBoot, events: viewEvents,
	};
	// Keep what the operator is typing: forms are not redrawn under them.
	if (document.activeElement && document.activeElement.form && $('view').contains(document.activeElement))
		return;
	$('view').replaceChildren((views[r[0]] || viewFleet)());
}

// Telemetry redraws only the views that show it.
function renderLive() {
	const r = route()[0];
	if (r === 'fleet' || r === 'host') render();
}

boot();
