package web

import (
	"bytes"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"steward/internal/activity"
	"steward/internal/analytics"
	"steward/internal/fault"
)

// Issue 4: the tracker, the collect endpoint, the staff reports (JSON and
// the console page with server-drawn SVG charts) and the anonymised
// trends. The handlers decode, call internal/activity or
// internal/analytics, and encode; when Deps.Activity or Deps.Analytics is
// nil their routes answer 404.

// handleTracker serves tracker.js, built for the policy in force. It may
// be cached (it holds nothing personal) and loaded from any origin.
func (s *server) handleTracker() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Activity == nil {
			s.fail(w, r, fault.New(fault.NotFound, "analytics is not enabled"))
			return
		}
		js, etag := s.d.Activity.Tracker()
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", etag)
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		http.ServeContent(w, r, "tracker.js", time.Time{}, bytes.NewReader(js))
	})
}

// collectCORS answers CORS for the collect endpoint: only origins of the
// named site (or, before the site is known, of any configured site). With
// credentials, so a signed-in member's session cookie reaches us where the
// policy links activity to accounts.
func (s *server) collectCORS(w http.ResponseWriter, r *http.Request, site string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.d.Activity == nil {
		return false
	}
	allowed := false
	for _, st := range s.d.Activity.Sites() {
		if (site == "" || st.ID == site) && st.AllowsOrigin(origin) {
			allowed = true
			break
		}
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !allowed {
		return false
	}
	// By canonical key: Set would canonicalise and allocate per call, on
	// every collected event.
	h["Access-Control-Allow-Origin"] = []string{origin}
	h["Access-Control-Allow-Credentials"] = []string{"true"}
	return true
}

// handleCollectPreflight answers the CORS preflight of fetch() with a JSON
// content type (sendBeacon's text/plain needs none).
func (s *server) handleCollectPreflight() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.collectCORS(w, r, "") {
			s.fail(w, r, fault.New(fault.Forbidden, "this origin may not send events"))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleCollect records one event: 202 once it is durably committed, 204
// when it is deliberately not recorded (a bot, or a member whose objection
// forbids it), a 4xx problem for bad input with nothing stored.
func (s *server) handleCollect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Activity == nil {
			s.problemJSON(w, r, fault.New(fault.NotFound, "analytics is not enabled"))
			return
		}
		// sendBeacon posts text/plain, which needs no preflight; fetch
		// may send JSON.
		if ct := r.Header.Get("Content-Type"); ct != "" && !plainCollectType(ct) {
			mt, params, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && mt != "text/plain") {
				s.collectCORS(w, r, "")
				s.problemJSON(w, r, fault.New(fault.Unsupported, "send the event as application/json or text/plain"))
				return
			}
			if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
				s.collectCORS(w, r, "")
				s.problemJSON(w, r, fault.New(fault.Unsupported, "the event must be UTF-8"))
				return
			}
		}
		buf := collectBufs.Get().(*bytes.Buffer)
		defer collectBufs.Put(buf)
		buf.Reset()
		_, err := buf.ReadFrom(io.LimitReader(r.Body, activity.MaxBody+1))
		// ParseInput copies what it keeps (the decoder owns its own
		// buffer), so the body's buffer goes back to the pool.
		body := buf.Bytes()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.problemJSON(w, r, fault.New(fault.TooLarge, "the event is larger than %d bytes", activity.MaxBody))
				return
			}
			s.problemJSON(w, r, badRequest("", "the request body could not be read", err))
			return
		}
		in, err := activity.ParseInput(body)
		s.collectCORS(w, r, in.Site)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		req := activity.Request{
			IP:        infoOf(r).client.IP,
			UserAgent: r.Header.Get("User-Agent"),
			Origin:    r.Header.Get("Origin"),
			GPC:       gpcSignal(r),
		}
		if a := s.optionalAuth(r); a != nil {
			req.SubjectID = a.P.Account.SubjectID
		}
		switch err := s.d.Activity.Collect(r.Context(), in, req); {
		case err == nil:
			w.WriteHeader(http.StatusAccepted)
		case errors.Is(err, activity.ErrNotRecorded):
			w.WriteHeader(http.StatusNoContent)
		default:
			s.problemJSON(w, r, err)
		}
	})
}

// collectBufs holds the buffers collect bodies are read into: one per
// request otherwise, on the hottest endpoint.
var collectBufs = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 1024)) }}

// plainCollectType reports whether ct is one of the content types the
// tracker sends (sendBeacon's text/plain with UTF-8, or JSON), written the
// way browsers write them; those need no media-type parsing. Anything else
// is parsed and checked in full.
func plainCollectType(ct string) bool {
	switch ct {
	case "text/plain;charset=UTF-8", "text/plain; charset=UTF-8", "text/plain;charset=utf-8",
		"text/plain; charset=utf-8", "text/plain", "application/json", "application/json; charset=utf-8":
		return true
	}
	return false
}

// reportQuery reads site, from, to, limit and interval.
func reportQuery(r *http.Request) (analytics.Query, error) {
	q := r.URL.Query()
	out := analytics.Query{Site: q.Get("site"), From: q.Get("from"), To: q.Get("to"), Interval: q.Get("interval")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return out, fault.FieldError("limit", "limit must be a whole number")
		}
		out.Limit = n
	}
	return out, nil
}

// handleReport answers GET /api/v1/admin/analytics/{report} for analysts
// and admins.
func (s *server) handleReport() authed {
	return func(w http.ResponseWriter, r *http.Request, _ auth) {
		if s.d.Analytics == nil {
			s.problemJSON(w, r, fault.New(fault.NotFound, "analytics is not enabled"))
			return
		}
		q, err := reportQuery(r)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		rep, err := s.d.Analytics.Report(r.Context(), r.PathValue("report"), q)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, rep)
	}
}

// handleTrends answers GET /api/v1/trends: public, anonymised, and only
// where the policy publishes trends.
func (s *server) handleTrends() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Analytics == nil {
			s.problemJSON(w, r, fault.New(fault.NotFound, "analytics is not enabled"))
			return
		}
		q, err := reportQuery(r)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		t, err := s.d.Analytics.Trends(r.Context(), q)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cache-Control", "public, max-age=300")
		s.encode(w, r, http.StatusOK, t)
	})
}

// analyticsPage is the console page's template, parsed with the layout.
const analyticsPage = `{{define "title"}}Analytics{{end}}
{{define "content"}}
<h1>Analytics</h1>
<p>Aggregate reports from the rollup tables: no visitor can be told apart here. Visitors are counted once per day
(visitor-days); days are the site's days, in {{.Data.Report.TimeZone}}.</p>
<form method="get" action="/admin/analytics" class="inline">
{{- if gt (len .Data.Sites) 1}}
<label for="a-site">Site</label>
<select id="a-site" name="site">{{range .Data.Sites}}<option value="{{.}}"{{if eq . $.Data.Report.Site}} selected{{end}}>{{.}}</option>{{end}}</select>
{{- end}}
<label for="a-from">From</label> <input id="a-from" name="from" type="date" value="{{.Data.Report.From}}">
<label for="a-to">To</label> <input id="a-to" name="to" type="date" value="{{.Data.Report.To}}">
<label for="a-interval">Interval</label>
<select id="a-interval" name="interval"><option value="day"{{if eq .Data.Report.Interval "day"}} selected{{end}}>day</option><option value="hour"{{if eq .Data.Report.Interval "hour"}} selected{{end}}>hour</option></select>
<button type="submit">Show</button>
</form>
<h2>Over time</h2>
<p>{{.Data.Report.Totals.Views}} page views by {{.Data.Report.Totals.Visitors}} visitor-days{{with .Data.Report.Totals.AvgDurationMS}}, {{seconds .}} on a page on average{{end}}.</p>
<figure>{{.Data.Chart}}<figcaption>Page views and visitors per {{.Data.Report.Interval}}.</figcaption></figure>
<details><summary>The numbers</summary>
<table><thead><tr><th scope="col">Start</th><th scope="col">Views</th><th scope="col">Visitors</th></tr></thead><tbody>
{{- range .Data.Report.Points}}<tr><td>{{.Start.Format "2006-01-02 15:04"}}</td><td>{{.Views}}</td><td>{{.Visitors}}</td></tr>{{end}}
</tbody></table></details>
{{- range $sec := .Data.Sections}}
<h2 id="{{$sec.Name}}">{{$sec.Title}}</h2>
{{- if $sec.Rows}}
<figure>{{$sec.Chart}}</figure>
<table><thead><tr><th scope="col">{{$sec.Column}}</th><th scope="col">{{if eq $sec.Name "search-terms"}}Searches{{else if eq $sec.Name "pages"}}Views{{else}}Count{{end}}</th><th scope="col">Visitors</th>{{if eq $sec.Name "pages"}}<th scope="col">Time on page</th>{{end}}</tr></thead><tbody>
{{- range $sec.Rows}}<tr><td>{{if .Value}}{{.Value}}{{else}}(unknown){{end}}</td><td>{{.Views}}</td><td>{{.Visitors}}</td>{{if eq $sec.Name "pages"}}<td>{{seconds .AvgDurationMS}}</td>{{end}}</tr>{{end}}
</tbody></table>
{{- else}}
<p>Nothing recorded in this range.</p>
{{- end}}
{{- end}}
<p>Anonymised trends for partners and the public: <a href="/api/v1/trends?site={{.Data.Report.Site}}">/api/v1/trends</a>.</p>
{{end}}`

type analyticsSection struct {
	Name, Title, Column string
	Rows                []analytics.Row
	Chart               template.HTML
}

type analyticsData struct {
	Sites    []string
	Report   *analytics.Report
	Chart    template.HTML
	Sections []analyticsSection
}

// analyticsSections are the dimension reports the console shows, in order.
var analyticsSections = []struct{ name, title, column string }{
	{"pages", "Pages", "Path"},
	{"referrers", "Referrers", "Source"},
	{"search-terms", "Search terms", "Terms"},
	{"campaigns", "Campaigns", "utm_campaign"},
	{"countries", "Countries", "Country"},
	{"regions", "Regions", "Region"},
	{"cities", "Cities", "City"},
	{"browsers", "Browsers", "Browser"},
	{"systems", "Operating systems", "System"},
	{"screens", "Screen sizes", "Class"},
	{"outbound", "Exit links", "Link"},
	{"downloads", "Downloads", "File"},
	{"events", "Custom events", "Event"},
}

// pageAnalytics is the console page /admin/analytics (analyst, admin):
// the time series and every dimension report with SVG charts drawn here,
// so the page needs no JavaScript.
func (s *server) pageAnalytics() authed {
	funcs := templateFuncs()
	funcs["seconds"] = func(ms int64) string { return (time.Duration(ms) * time.Millisecond).Round(time.Second).String() }
	t, err := template.New("analytics").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err == nil {
		_, err = t.Parse(analyticsPage)
	}
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err != nil {
			s.errorPage(w, r, fault.Wrap(fault.Internal, err, "internal error"))
			return
		}
		if s.d.Analytics == nil || s.d.Activity == nil {
			s.errorPage(w, r, fault.New(fault.NotFound, "analytics is not enabled"))
			return
		}
		q, qerr := reportQuery(r)
		if qerr != nil {
			s.errorPage(w, r, qerr)
			return
		}
		q.Limit = 0
		if q.Site == "" && len(s.d.Activity.Sites()) > 0 {
			q.Site = s.d.Activity.Sites()[0].ID
		}
		d := analyticsData{}
		for _, st := range s.d.Activity.Sites() {
			d.Sites = append(d.Sites, st.ID)
		}
		series, rerr := s.d.Analytics.Report(r.Context(), analytics.Timeseries, q)
		if rerr != nil {
			s.errorPage(w, r, rerr)
			return
		}
		d.Report = series
		d.Chart = analytics.LineChart("Page views and visitors", series.Points, series.Interval == "hour")
		dq := q
		dq.Interval, dq.Limit = "", 25
		for _, sec := range analyticsSections {
			rep, err := s.d.Analytics.Report(r.Context(), sec.name, dq)
			if err != nil {
				s.errorPage(w, r, err)
				return
			}
			d.Sections = append(d.Sections, analyticsSection{Name: sec.name, Title: sec.title, Column: sec.column,
				Rows: rep.Rows, Chart: analytics.BarChart(sec.title, rep.Rows, 10)})
		}
		v := s.newView("Analytics", &a)
		v.Data = d
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelError, "web: render analytics", slog.String("request_id", infoOf(r).id), slog.String("error", err.Error()))
			s.errorPage(w, r, fault.Wrap(fault.Internal, err, "internal error"))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write(buf.Bytes())
	}
}

// analyticsOps documents issue 4's API routes in /openapi.json.
func analyticsOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/collect": {tag: "analytics", summary: "Record a page view or event from the tracker",
			request: "CollectEvent", status: 202, problems: []int{400, 403, 413, 415},
			desc: "Answers 202 only once the event is durably committed (events arriving together share one transaction), " +
				"204 when it is deliberately not recorded (a bot, or a member whose objection forbids it). Accepts " +
				"application/json and text/plain (sendBeacon). CORS is answered only for the site's origins. No cookie is set; the IP " +
				"address and user agent are used for the day's visitor hash, the country and the browser family, and are not stored."},
		"OPTIONS /api/v1/collect": {tag: "analytics", summary: "CORS preflight of the collect endpoint", status: 204, problems: []int{403}},
		"GET /api/v1/admin/analytics/{report}": {tag: "analytics", summary: "A staff report (analyst or admin)", auth: true,
			status: 200, response: "AnalyticsReport", problems: []int{400, 403, 404},
			desc: "report is one of " + strings.Join(analytics.ReportNames(), ", ") + ". Query: site (optional with one site), from and to " +
				"(YYYY-MM-DD, the site's local days; default the last 30), limit, interval (day or hour, timeseries only)."},
		"GET /api/v1/trends": {tag: "analytics", summary: "Anonymised trends, where the policy publishes them", status: 200,
			response: "Trends", problems: []int{400, 404},
			desc: "Complete days only. Groups with fewer than k visitor-days are left out; with dp_epsilon set, each figure carries " +
				"discrete Laplace noise, and the privacy budget is stated in the answer."},
	}
}

// analyticsSchemas are the component schemas analyticsOps name.
func analyticsSchemas() map[string]any {
	integer := map[string]any{"type": "integer"}
	row := object(map[string]any{"value": str(""), "views": integer, "visitors": integer, "avg_duration_ms": integer}, "value", "views", "visitors")
	point := object(map[string]any{"start": map[string]any{"type": "string", "format": "date-time"}, "views": integer, "visitors": integer}, "start", "views", "visitors")
	trendRow := object(map[string]any{"value": str(""), "visitor_days": integer}, "value", "visitor_days")
	trendRows := map[string]any{"type": "array", "items": trendRow}
	return map[string]any{
		"CollectEvent": object(map[string]any{
			"site":        str("The site id (data-site of the script tag)."),
			"type":        map[string]any{"type": "string", "enum": []string{"pageview", "search", "outbound", "download", "event", "engagement"}},
			"url":         map[string]any{"type": "string", "maxLength": 2048, "description": "The page; only its path, utm_* parameters and the search parameter are kept."},
			"referrer":    map[string]any{"type": "string", "maxLength": 2048, "description": "Scheme, host and path are kept."},
			"search":      map[string]any{"type": "string", "description": "Search terms (type search)."},
			"duration_ms": map[string]any{"type": "integer", "minimum": 1, "maximum": 86400000, "description": "Time on the page (type engagement)."},
			"name":        map[string]any{"type": "string", "maxLength": 64, "description": "Custom event name (type event)."},
			"target":      map[string]any{"type": "string", "maxLength": 2048, "description": "The link followed (types outbound and download)."},
			"screen":      map[string]any{"type": "string", "enum": []string{"phone", "tablet", "laptop", "desktop", "wide"}},
			"props":       map[string]any{"type": "object", "maxProperties": 20, "description": "Flat string, number or boolean properties (type event)."},
			"ts":          map[string]any{"type": "integer", "description": "The client's clock in ms; refused more than 5 minutes off."},
		}, "site", "type", "url"),
		"AnalyticsReport": object(map[string]any{
			"site": str(""), "report": str(""), "from": str(""), "to": str(""), "time_zone": str(""), "interval": str(""),
			"totals": object(map[string]any{"views": integer, "visitors": integer, "avg_duration_ms": integer}),
			"rows":   map[string]any{"type": "array", "items": row},
			"points": map[string]any{"type": "array", "items": point},
		}, "site", "report", "from", "to", "time_zone", "totals"),
		"Trends": object(map[string]any{
			"site": str(""), "from": str(""), "to": str(""), "time_zone": str(""),
			"privacy": object(map[string]any{"unit": str(""), "k": integer, "epsilon_per_count": map[string]any{"type": "number"},
				"mechanism": str(""), "sensitivity": integer, "statement": str("")}),
			"days":              map[string]any{"type": "array", "items": object(map[string]any{"day": str(""), "visitor_days": integer})},
			"pages":             trendRows,
			"referrers":         trendRows,
			"countries":         trendRows,
			"browsers":          trendRows,
			"systems":           trendRows,
			"suppressed_groups": integer,
		}, "site", "from", "to", "privacy", "days", "pages", "countries"),
	}
}
