// Routes in the URL's hash (#/schedules/abc?tab=runs): the API serves one page, /ui/, and
// every view is a link that can be bookmarked, shared and opened in a new tab.
import { useEffect, useState } from "preact/hooks";

export function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/schedules";
  const [path, search = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search) };
}

export function useRoute() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const changed = () => setRoute(currentRoute());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

export function href(path, params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function go(path, params) {
  location.hash = href(path, params);
}

// Changes the hash's parameters without adding a history entry per keystroke.
export function replaceParams(path, params) {
  history.replaceState(null, "", href(path, params));
  dispatchEvent(new HashChangeEvent("hashchange"));
}
