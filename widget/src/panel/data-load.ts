/**
 * loadDataView loads the "Your data" view's bundle (panel-data.js, built
 * next to panel.js) once, on first use, and gives its constructor. A failed
 * load may be tried again.
 */
import type { CreateDataView } from "./data";

let loading: Promise<CreateDataView> | undefined;

export function loadDataView(): Promise<CreateDataView> {
  loading ??= new Promise<CreateDataView>((resolve, reject) => {
    const s = document.createElement("script");
    s.src = new URL("/static/panel-data.js", location.origin).href;
    s.async = true;
    s.onload = () => {
      const f = (window as unknown as { letheDataView?: CreateDataView }).letheDataView;
      if (f) resolve(f);
      else reject(new Error("no view"));
    };
    s.onerror = () => reject(new Error("not loaded"));
    document.head.append(s);
  }).catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}
