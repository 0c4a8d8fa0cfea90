// The API reference at /docs: renders the OpenAPI document (openapi.json, same origin) in the
// page. No dependencies and nothing loaded from elsewhere. Text from the document is inserted
// as text (or escaped before the little Markdown below is applied).
"use strict";

(function () {
  const METHODS = ["get", "post", "put", "patch", "delete"];
  let doc = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  // Inline Markdown on escaped text: `code`, **bold**, and links to the document's components.
  function inline(text) {
    return escapeHtml(text)
      .replace(/`([^`]+)`/g, (_, code) => {
        const ref = /^#\/components\/(schemas|responses)\/([\w.-]+)$/.exec(code);
        if (ref) return '<a href="#' + anchor(ref[1], ref[2]) + '"><code>' + ref[2] + "</code></a>";
        return "<code>" + code + "</code>";
      })
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  }

  // Paragraphs (blank-line separated) and "- " lists.
  function markdown(text) {
    const box = el("div", "md");
    if (!text) return box;
    for (const block of String(text).split(/\n\s*\n/)) {
      const lines = block.split("\n");
      if (lines[0].startsWith("- ")) {
        const list = el("ul");
        let item = null;
        for (const line of lines) {
          if (line.startsWith("- ")) {
            item = line.slice(2);
            list.appendChild(el("li")).dataset.md = item;
          } else if (list.lastChild) {
            list.lastChild.dataset.md += " " + line.trim();
          }
        }
        for (const li of list.children) li.innerHTML = inline(li.dataset.md);
        box.appendChild(list);
      } else {
        const p = el("p");
        p.innerHTML = inline(lines.map((l) => l.trim()).join(" "));
        box.appendChild(p);
      }
    }
    return box;
  }

  function anchor(kind, name) {
    return kind + "-" + name.replace(/[^\w-]/g, "_");
  }

  function opAnchor(method, path) {
    return "op-" + method + "-" + path.replace(/[^\w]+/g, "_");
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  function resolve(obj) {
    let guard = 0;
    while (obj && obj.$ref && guard++ < 10) {
      const parts = obj.$ref.replace(/^#\//, "").split("/");
      obj = parts.reduce((o, k) => (o ? o[k] : undefined), doc);
    }
    return obj || {};
  }

  function typeLabel(schema) {
    if (!schema) return "any";
    if (schema.$ref) return refName(schema.$ref);
    let type = schema.type;
    if (Array.isArray(type)) type = type.join(" | ");
    if (!type && schema.enum) type = "enum";
    if (schema.type === "array" || (Array.isArray(schema.type) && schema.type.includes("array"))) {
      type = type.replace("array", typeLabel(schema.items) + "[]");
    }
    if (schema.oneOf || schema.anyOf) type = (schema.oneOf || schema.anyOf).map(typeLabel).join(" | ");
    if (schema.format) type += " (" + schema.format + ")";
    return type || "any";
  }

  function constraints(schema) {
    const out = [];
    if (!schema) return out;
    if (schema.enum) out.push("one of " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
    if (schema.pattern) out.push("pattern " + schema.pattern);
    if (schema.minLength !== undefined) out.push("min length " + schema.minLength);
    if (schema.maxLength !== undefined) out.push("max length " + schema.maxLength);
    if (schema.minimum !== undefined) out.push("minimum " + schema.minimum);
    if (schema.maxItems !== undefined) out.push("at most " + schema.maxItems + " items");
    if (schema.additionalProperties === false) out.push("no other fields");
    return out;
  }

  function typeCell(schema) {
    const cell = el("td", "type");
    if (schema && schema.$ref) {
      const a = el("a", null, refName(schema.$ref));
      a.href = "#" + anchor("schemas", refName(schema.$ref));
      cell.appendChild(a);
    } else if (schema && schema.items && schema.items.$ref) {
      const a = el("a", null, refName(schema.items.$ref) + "[]");
      a.href = "#" + anchor("schemas", refName(schema.items.$ref));
      cell.appendChild(a);
    } else {
      cell.textContent = typeLabel(schema);
    }
    return cell;
  }

  // A schema: an object's fields as a table, anything else as its type and constraints. A
  // reference to a named schema is a link, followed by its fields unless `linkOnly`.
  function renderSchema(schema, linkOnly) {
    const box = el("div", "schema");
    if (!schema) return box;
    if (schema.$ref) {
      const line = el("p", "schema-ref");
      line.appendChild(document.createTextNode("Schema: "));
      const a = el("a", null, refName(schema.$ref));
      a.href = "#" + anchor("schemas", refName(schema.$ref));
      line.appendChild(a);
      box.appendChild(line);
      if (linkOnly) return box;
      schema = resolve(schema);
    }
    if (schema.description && !box.firstChild) box.appendChild(markdown(schema.description));
    if (schema.properties) {
      const table = el("table", "fields");
      const head = table.appendChild(el("tr"));
      for (const h of ["Field", "Type", "Description"]) head.appendChild(el("th", null, h));
      const required = new Set(schema.required || []);
      for (const [name, prop] of Object.entries(schema.properties)) {
        const row = table.appendChild(el("tr"));
        const nameCell = row.appendChild(el("td", "name"));
        nameCell.appendChild(el("code", null, name));
        nameCell.appendChild(el("span", required.has(name) ? "req" : "opt", required.has(name) ? "required" : "optional"));
        row.appendChild(typeCell(prop));
        const desc = row.appendChild(el("td"));
        const resolved = prop.$ref ? resolve(prop) : prop;
        desc.appendChild(markdown(prop.description || (prop.$ref ? resolved.description : "")));
        const rules = constraints(resolved);
        if (rules.length) desc.appendChild(el("p", "rules", rules.join("; ")));
        if (prop.example !== undefined) desc.appendChild(el("p", "rules", "example: " + JSON.stringify(prop.example)));
      }
      box.appendChild(table);
      if (schema.additionalProperties === false) box.appendChild(el("p", "rules", "No other fields are accepted."));
    } else {
      const line = el("p", "rules", "Type: " + typeLabel(schema));
      const rules = constraints(schema);
      if (rules.length) line.textContent += "; " + rules.join("; ");
      box.appendChild(line);
    }
    return box;
  }

  // An example built from the schema's property examples (for request bodies without one).
  function exampleOf(schema, depth) {
    schema = resolve(schema);
    if ((depth || 0) > 4) return null;
    if (schema.example !== undefined) return schema.example;
    if (schema.properties) {
      const out = {};
      for (const [name, prop] of Object.entries(schema.properties)) {
        const value = exampleOf(prop, (depth || 0) + 1);
        if (value !== undefined) out[name] = value;
      }
      return out;
    }
    if (schema.enum) return schema.enum[0];
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    return { string: "…", integer: 0, number: 0, boolean: true, object: {}, array: [] }[type];
  }

  function code(value) {
    const pre = el("pre", "example");
    pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    return pre;
  }

  // A body of one media type: its schema (named ones only linked when `linkOnly`), examples.
  function renderContent(media, content, requestBody, linkOnly) {
    const box = el("div", "content");
    box.appendChild(el("div", "media", media));
    if (content.schema) box.appendChild(renderSchema(content.schema, linkOnly));
    const examples = content.examples ? Object.entries(content.examples) : [];
    if (content.example !== undefined) examples.unshift(["example", { value: content.example }]);
    if (!examples.length && requestBody && content.schema) examples.push(["example", { value: exampleOf(content.schema) }]);
    for (const [name, ex] of examples) {
      const value = resolve(ex);
      const details = el("details", "ex");
      details.open = examples.length === 1;
      details.appendChild(el("summary", null, value.summary || name));
      details.appendChild(code(value.value));
      box.appendChild(details);
    }
    return box;
  }

  // Response headers: a closed list of their names that opens on a table.
  function renderHeaders(headers, open) {
    const details = el("details", "headers");
    details.open = Boolean(open);
    details.appendChild(el("summary", null, "Headers: " + Object.keys(headers).join(", ")));
    const table = details.appendChild(el("table", "fields"));
    const head = table.appendChild(el("tr"));
    for (const h of ["Header", "Type", "Description"]) head.appendChild(el("th", null, h));
    for (const [name, header] of Object.entries(headers)) {
      const row = table.appendChild(el("tr"));
      row.appendChild(el("td", "name")).appendChild(el("code", null, name));
      row.appendChild(typeCell(header.schema));
      const desc = row.appendChild(el("td"));
      desc.appendChild(markdown(header.description || ""));
      const rules = constraints(header.schema);
      if (rules.length) desc.appendChild(el("p", "rules", rules.join("; ")));
    }
    return details;
  }

  function statusClass(status) {
    return "status-" + String(status)[0] + "xx";
  }

  function renderResponse(status, response, asComponent) {
    const box = el("div", "response");
    const head = box.appendChild(el("div", "response-head"));
    if (!asComponent) head.appendChild(el("span", "code " + statusClass(status), status));
    if (response.$ref) {
      const name = refName(response.$ref);
      const target = resolve(response);
      head.appendChild(markdown(target.description)).classList.add("inline-md");
      const link = el("a", "shared", "shared: " + name);
      link.href = "#" + anchor("responses", name);
      head.appendChild(link);
      response = target;
    } else {
      head.appendChild(markdown(response.description)).classList.add("inline-md");
    }
    if (response.headers) box.appendChild(renderHeaders(response.headers, asComponent));
    // Success bodies show their fields; error bodies link to ErrorBody (the same everywhere).
    const linkOnly = !String(status).startsWith("2");
    for (const [media, content] of Object.entries(response.content || {})) {
      box.appendChild(renderContent(media, content, false, linkOnly));
    }
    return box;
  }

  function securityLine(op) {
    const line = el("p", "security");
    if (!op.security || !op.security.length) {
      line.textContent = "Credentials: none";
      return line;
    }
    line.appendChild(document.createTextNode("Credentials: "));
    op.security.forEach((req, i) => {
      if (i) line.appendChild(document.createTextNode(" or "));
      for (const name of Object.keys(req)) {
        const a = el("a", "chip", name);
        a.href = "#" + anchor("security", name);
        line.appendChild(a);
      }
    });
    return line;
  }

  function renderOperation(method, path, op) {
    const section = el("section", "op");
    section.id = opAnchor(method, path);
    const head = section.appendChild(el("div", "op-head"));
    head.appendChild(el("span", "method method-" + method, method.toUpperCase()));
    head.appendChild(el("code", "path", path));
    section.appendChild(el("h3", null, op.summary || op.operationId));
    section.appendChild(markdown(op.description));
    section.appendChild(securityLine(op));
    if (op.parameters && op.parameters.length) {
      section.appendChild(el("h4", null, "Parameters"));
      const table = el("table", "fields");
      const headRow = table.appendChild(el("tr"));
      for (const h of ["Name", "In", "Type", "Description"]) headRow.appendChild(el("th", null, h));
      for (const p of op.parameters.map(resolve)) {
        const row = table.appendChild(el("tr"));
        const name = row.appendChild(el("td", "name"));
        name.appendChild(el("code", null, p.name));
        name.appendChild(el("span", p.required ? "req" : "opt", p.required ? "required" : "optional"));
        row.appendChild(el("td", null, p.in));
        row.appendChild(typeCell(p.schema));
        const desc = row.appendChild(el("td"));
        desc.appendChild(markdown(p.description || ""));
        const rules = constraints(p.schema);
        if (rules.length) desc.appendChild(el("p", "rules", rules.join("; ")));
        if (p.example !== undefined) desc.appendChild(el("p", "rules", "example: " + JSON.stringify(p.example)));
      }
      section.appendChild(table);
    }
    if (op.requestBody) {
      const body = resolve(op.requestBody);
      section.appendChild(el("h4", null, "Request body" + (body.required ? "" : " (optional)")));
      section.appendChild(markdown(body.description));
      for (const [media, content] of Object.entries(body.content || {})) {
        section.appendChild(renderContent(media, content, true, false));
      }
    }
    section.appendChild(el("h4", null, "Responses"));
    for (const [status, response] of Object.entries(op.responses || {})) section.appendChild(renderResponse(status, response, false));
    return section;
  }

  function operationsByTag() {
    const groups = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || "other";
        if (!groups.has(tag)) groups.set(tag, { tag: { name: tag }, ops: [] });
        groups.get(tag).ops.push({ method, path, op });
      }
    }
    return [...groups.values()].filter((g) => g.ops.length);
  }

  function render() {
    const main = document.getElementById("main");
    const nav = document.getElementById("nav-items");
    main.textContent = "";
    document.getElementById("version").textContent = "v" + doc.info.version + " · OpenAPI " + doc.openapi;
    document.title = doc.info.title + " API reference";

    const intro = main.appendChild(el("section", "intro"));
    intro.appendChild(el("h1", null, doc.info.title));
    intro.appendChild(markdown(doc.info.description));

    for (const group of operationsByTag()) {
      const section = main.appendChild(el("section", "tag"));
      section.id = anchor("tag", group.tag.name);
      section.appendChild(el("h2", null, group.tag.name));
      if (group.tag.description) section.appendChild(markdown(group.tag.description));
      const navGroup = nav.appendChild(el("div", "nav-group"));
      const title = navGroup.appendChild(el("a", "nav-tag", group.tag.name));
      title.href = "#" + section.id;
      for (const { method, path, op } of group.ops) {
        section.appendChild(renderOperation(method, path, op));
        const link = navGroup.appendChild(el("a", "nav-op"));
        link.href = "#" + opAnchor(method, path);
        link.appendChild(el("span", "method method-" + method, method.toUpperCase()));
        link.appendChild(el("span", "nav-path", path));
        link.dataset.search = (method + " " + path + " " + (op.summary || "")).toLowerCase();
      }
    }

    const components = doc.components || {};
    if (components.securitySchemes) {
      const section = main.appendChild(el("section", "tag"));
      section.id = "credentials";
      section.appendChild(el("h2", null, "Credentials"));
      for (const [name, scheme] of Object.entries(components.securitySchemes)) {
        const box = section.appendChild(el("div", "component"));
        box.id = anchor("security", name);
        box.appendChild(el("h3", null, name));
        const how = scheme.type === "http" ? "HTTP " + scheme.scheme + (scheme.bearerFormat ? " (" + scheme.bearerFormat + ")" : "")
          : scheme.type === "apiKey" ? scheme.in + " " + scheme.name : scheme.type;
        box.appendChild(el("p", "rules", how));
        box.appendChild(markdown(scheme.description));
      }
    }
    if (components.responses) {
      const section = main.appendChild(el("section", "tag"));
      section.id = "shared-responses";
      section.appendChild(el("h2", null, "Shared responses"));
      for (const [name, response] of Object.entries(components.responses)) {
        const box = section.appendChild(el("div", "component"));
        box.id = anchor("responses", name);
        box.appendChild(el("h3", null, name));
        box.appendChild(renderResponse(name, response, true));
      }
    }
    if (components.schemas) {
      const section = main.appendChild(el("section", "tag"));
      section.id = "schemas";
      section.appendChild(el("h2", null, "Schemas"));
      for (const [name, schema] of Object.entries(components.schemas)) {
        const box = section.appendChild(el("div", "component"));
        box.id = anchor("schemas", name);
        box.appendChild(el("h3", null, name));
        if (schema.properties && schema.description) box.appendChild(markdown(schema.description));
        box.appendChild(renderSchema(schema));
      }
    }
    const extra = nav.appendChild(el("div", "nav-group"));
    for (const [id, label] of [["credentials", "Credentials"], ["shared-responses", "Shared responses"], ["schemas", "Schemas"]]) {
      if (!document.getElementById(id)) continue;
      const link = extra.appendChild(el("a", "nav-tag", label));
      link.href = "#" + id;
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  function filter(query) {
    query = query.trim().toLowerCase();
    for (const link of document.querySelectorAll(".nav-op")) {
      link.hidden = Boolean(query) && !link.dataset.search.includes(query);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("filter").addEventListener("input", (e) => filter(e.target.value));
    fetch("openapi.json", { headers: { accept: "application/json" } })
      .then((r) => {
        if (!r.ok) throw new Error("openapi.json answered " + r.status);
        return r.json();
      })
      .then((json) => {
        doc = json;
        render();
      })
      .catch((e) => {
        document.getElementById("status").textContent = "Could not load the OpenAPI document: " + e.message;
      });
  });
})();
