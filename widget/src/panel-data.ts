/**
 * The "Your data" view's own bundle (panel-data.js): loaded by the panel
 * (panel/data-load.ts) the first time the visitor opens it, so that the
 * privacy client stays out of the chat panel's first load. It hands the
 * view's constructor to the panel through one global.
 */
import { createDataView } from "./panel/data";

(window as unknown as { letheDataView: typeof createDataView }).letheDataView = createDataView;
