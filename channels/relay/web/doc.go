// Package web serves the browser side of the relay: the client script that opens the
// user's websocket and shows pop-ups and the notification center's bell, and a small
// demo page built on it.
//
// Routes (see Patterns; all GET, HEAD answered too):
//
//	/                    the demo page: ?token=<user token> connects it; &dismiss=<seconds>
//	                     sets how long pop-ups stay (0 keeps them until closed)
//	/client.js           the browser client: window.KommoNotify and APP.notifications
//	/demo/app.js         the demo page's own script
//	/demo/style.css      the demo page's style sheet
//	/demo/telephone.svg  the icon of the demo's show_message
//	/demo/bell.svg       the demo page's favicon
//
// Every file is embedded in the binary and served with its SHA-256 as a strong ETag
// and "Cache-Control: no-cache": a browser keeps its copy and revalidates it, so a new
// release is picked up on the next load while an unchanged file costs a 304. Every
// response carries "X-Content-Type-Options: nosniff" and "Referrer-Policy: no-referrer"
// (the page's URL holds a token). The page has a Content-Security-Policy without
// 'unsafe-inline' for scripts or styles, which is why it loads its wiring from
// /demo/app.js and its styles from /demo/style.css, and why client.js installs its
// styles as a constructed style sheet instead of a <style> element: the client keeps
// working on host pages with the same strict policy. /client.js may be loaded from
// other origins (Access-Control-Allow-Origin: *, Cross-Origin-Resource-Policy:
// cross-origin), so a CRM page can include it from the dispatcher.
//
// The websocket (GET /ws) and the HTTP API that APP.notifications posts to and the bell
// reads and marks (/api/v1/center) are served by the relay hub and the HTTP API; this
// package only ships files. It imports nothing
// of the module.
package web
