// Building the page from data without HTML strings: every value becomes text, never markup.

export function h(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name === "style" && typeof value === "object") {
      Object.assign(node.style, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// One formatter for the page: making one per call (toLocaleString) costs more than the rest
// of a table row.
const TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function when(text) {
  if (!text) return "";
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return String(text);
  return TIME.format(date);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status || "").toLowerCase()}` }, status);
}

export function instanceLink(id, text) {
  return h("a", { href: `#/instance/${encodeURIComponent(id)}`, class: "mono" }, text ?? id);
}

// Offer `text` as a file the browser saves (made in the page, from data already loaded).
export function downloadButton(label, filename, text) {
  return h(
    "button",
    {
      type: "button",
      class: "quiet",
      onclick: () => {
        const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
        const link = h("a", { href: url, download: filename });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      },
    },
    label,
  );
}

export function bytes(count) {
  if (count < 1024) return `${count} characters`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} K characters`;
  return `${(count / 1024 / 1024).toFixed(1)} M characters`;
}
