package web

import (
	"net/http"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
)

// LoaderProcedures are the RPCs the widget loader calls from the host page,
// another origin than the server's: the widget's configuration and the page
// views, presence, invitations and custom data of its visit, with the
// write-only page token. Nothing else is reachable cross-origin.
var LoaderProcedures = []string{
	chatv1connect.ChatServiceGetWidgetConfigProcedure,
	monitorv1connect.MonitorServiceTrackProcedure,
	monitorv1connect.MonitorServiceHeartbeatProcedure,
	monitorv1connect.MonitorServiceLeaveProcedure,
	monitorv1connect.MonitorServiceWatchVisitProcedure,
	monitorv1connect.MonitorServiceSetCustomDataProcedure,
	monitorv1connect.MonitorServiceIdentifyProcedure,
}

// CORSMaxAge is how long a browser may keep a preflight's answer (seconds):
// a visitor pays one preflight per procedure every two hours.
const CORSMaxAge = 7200

// LoaderCORS answers cross-origin requests, preflights included, for the
// LoaderProcedures only: Access-Control-Allow-Origin echoes the Origin (the
// calls carry no cookies and credentials are not allowed; Track itself
// refuses websites the account does not list), with the headers Connect
// needs (connectrpc.com/cors) and Authorization for the page token. Every
// other path is left to the same-origin policy.
func LoaderCORS(next http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowOriginFunc:  func(string) bool { return true },
		AllowedMethods:   connectcors.AllowedMethods(),
		AllowedHeaders:   append(connectcors.AllowedHeaders(), "Authorization"),
		ExposedHeaders:   connectcors.ExposedHeaders(),
		AllowCredentials: false,
		MaxAge:           CORSMaxAge,
	})
	withCORS := c.Handler(next)
	loader := make(map[string]bool, len(LoaderProcedures))
	for _, p := range LoaderProcedures {
		loader[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loader[r.URL.Path] {
			withCORS.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AllowLoaderCrossOrigin lets the loader's cross-origin POSTs through p,
// which otherwise refuses every cross-site state-changing request. They
// need no operator session and carry no cookie (credentials are never
// allowed for them).
func AllowLoaderCrossOrigin(p *http.CrossOriginProtection) {
	for _, proc := range LoaderProcedures {
		p.AddInsecureBypassPattern("POST " + proc)
	}
}
