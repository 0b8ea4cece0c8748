package main

// Drawing the picture of the dashboard (dashboard_picture_test.go): the dashboard's
// panels on its grid, each one's answers from Prometheus as an SVG chart or a stat.

import (
	"context"
	"fmt"
	"html"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chartSeries is one line of a panel: its legend and its points.
type chartSeries struct {
	label  string
	points [][2]float64 // unix seconds, value (NaN: no value)
}

type pictureLayout struct {
	html          string
	width, height int
}

// The page's geometry: Grafana's 24-column grid, one grid unit high per unitPx.
const (
	pagePadding = 16
	pageWidth   = 1600
	headerPx    = 96
	unitPx      = 34
	gapPx       = 8
)

// grafanaPalette is Grafana's classic palette.
var grafanaPalette = []string{"#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0",
	"#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477"}

var legendRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// expand substitutes what Grafana substitutes in the dashboard's expressions: every
// dispatcher selected, the rate interval for this scrape interval, the time range.
func expand(expr string, from, to time.Time) string {
	r := strings.NewReplacer(
		"$__rate_interval", pictureRateInterval,
		"$__range", fmt.Sprintf("%ds", int(to.Sub(from).Seconds())),
		"$instance", ".*",
	)
	return r.Replace(expr)
}

// renderPicture runs every panel's queries and lays the panels out as HTML.
func renderPicture(t *testing.T, dash grafanaDashboard, prom *promServer, from, to time.Time) pictureLayout {
	t.Helper()
	colPx := float64(pageWidth-2*pagePadding) / 24
	bottom := 0
	var body strings.Builder
	for _, p := range dash.Panels {
		g := p.GridPos
		if g == nil {
			continue
		}
		bottom = max(bottom, g.Y+g.H)
		x := pagePadding + int(math.Round(float64(g.X)*colPx))
		y := headerPx + g.Y*unitPx
		w := int(math.Round(float64(g.W)*colPx)) - gapPx
		h := g.H*unitPx - gapPx
		if p.Type == "row" {
			fmt.Fprintf(&body, `<div class="row" style="left:%dpx;top:%dpx;width:%dpx">%s</div>`, x, y+4, w, html.EscapeString(p.Title))
			continue
		}
		var series []chartSeries
		var problems []string
		for _, tg := range p.Targets {
			s, err := queryRange(t.Context(), prom, expand(tg.Expr, from, to), tg.LegendFormat, from, to)
			if err != nil {
				problems = append(problems, err.Error())
			}
			series = append(series, s...)
		}
		if len(problems) > 0 {
			t.Errorf("panel %q: %s", p.Title, strings.Join(problems, "; "))
		}
		fmt.Fprintf(&body, `<div class="panel" style="left:%dpx;top:%dpx;width:%dpx;height:%dpx"><div class="title">%s</div>`,
			x, y, w, h, html.EscapeString(p.Title))
		note := ""
		if slices.ContainsFunc(p.Targets, func(tg grafanaTarget) bool {
			return slices.ContainsFunc(metricReferences(tg.Expr, ""), func(r reference) bool { return isExporterMetric(r.name) })
		}) {
			note = "No data: the NATS exporter runs in docker compose, not in this run"
		}
		switch p.Type {
		case "stat":
			body.WriteString(drawStat(p, series, w, h-28))
		default:
			body.WriteString(drawChart(p, series, w, h-28, from, to, note))
		}
		body.WriteString(`</div>`)
	}
	height := headerPx + bottom*unitPx + pagePadding
	version := prom.version
	if version == "" {
		version = "?"
	}
	head := fmt.Sprintf(`<div class="header"><div class="name">notify: notification dispatcher</div>`+
		`<div class="range">%s to %s UTC &middot; every dispatcher &middot; $__rate_interval = %s</div>`+
		`<div class="caption">Stand-in rendering, not Grafana: the panels of deploy/grafana/dashboards/notify.json, their own PromQL run against a real Prometheus %s `+
		`scraping a real dispatcher every %s under a bounded synthetic load (cmd/dispatcher/dashboard_picture_test.go), drawn as SVG.</div></div>`,
		from.UTC().Format(time.TimeOnly), to.UTC().Format(time.TimeOnly), pictureRateInterval, html.EscapeString(version), pictureScrape)
	page := `<!doctype html><html><head><meta charset="utf-8"><style>` + pictureCSS + `</style></head><body>` +
		head + body.String() + `</body></html>`
	return pictureLayout{html: page, width: pageWidth, height: height}
}

const pictureCSS = `
* { box-sizing: border-box; }
body { margin: 0; background: #111217; color: #ccccdc; font: 12px "DejaVu Sans", "Liberation Sans", sans-serif; position: relative; }
.header { position: absolute; left: 16px; top: 10px; right: 16px; }
.name { font-size: 18px; font-weight: bold; color: #e6e6f0; }
.range { position: absolute; right: 0; top: 3px; color: #9fa3b3; }
.caption { margin-top: 8px; padding: 5px 8px; border-left: 3px solid #EAB839; background: #22252b; color: #d8d9e3; }
.row { position: absolute; font-size: 14px; font-weight: bold; color: #e6e6f0; }
.panel { position: absolute; background: #181b1f; border: 1px solid #2c3235; border-radius: 2px; overflow: hidden; }
.title { height: 26px; line-height: 26px; padding: 0 8px; font-weight: bold; color: #d8d9e3; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
svg text { fill: #9fa3b3; font: 10px "DejaVu Sans", sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 12px; padding: 0 8px; font-size: 11px; }
.legend span.sw { display: inline-block; width: 12px; height: 3px; margin-right: 4px; vertical-align: middle; }
.stat { display: flex; align-items: center; justify-content: center; font-size: 34px; font-weight: bold; }
`

// queryRange runs one target over the window and names its series by the legend format.
func queryRange(ctx context.Context, prom *promServer, expr, legend string, from, to time.Time) ([]chartSeries, error) {
	res, err := prom.api(ctx, "/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(from.Unix(), 10)},
		"end":   {strconv.FormatInt(to.Unix(), 10)},
		"step":  {strconv.Itoa(int(pictureStep.Seconds()))},
	})
	if err != nil {
		return nil, err
	}
	var out []chartSeries
	for _, r := range res {
		label := legendRE.ReplaceAllStringFunc(legend, func(m string) string {
			return r.Metric[legendRE.FindStringSubmatch(m)[1]]
		})
		if label == "" {
			label = expr
		}
		s := chartSeries{label: label}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil || math.IsInf(f, 0) {
				f = math.NaN()
			}
			s.points = append(s.points, [2]float64{ts, f})
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b chartSeries) int { return strings.Compare(a.label, b.label) })
	return out, nil
}

// drawStat draws a stat panel: its last value, coloured by the thresholds, over a
// sparkline.
func drawStat(p grafanaPanel, series []chartSeries, w, h int) string {
	last := math.NaN()
	if len(series) > 0 {
		for _, pt := range series[0].points {
			if !math.IsNaN(pt[1]) {
				last = pt[1]
			}
		}
	}
	def := p.FieldConfig.Defaults
	color := "#7EB26D"
	for _, s := range def.Thresholds.Steps {
		if s.Value == nil || (!math.IsNaN(last) && last >= *s.Value) {
			color = map[string]string{"green": "#73BF69", "orange": "#FF9830", "red": "#F2495C"}[s.Color]
		}
	}
	text := "No data"
	if !math.IsNaN(last) {
		text = formatValue(last, def.Unit, def.Decimals)
	}
	var spark strings.Builder
	if len(series) > 0 {
		spark.WriteString(sparkline(series[0].points, w, h/2, color))
	}
	return fmt.Sprintf(`<div style="position:relative;height:%dpx"><div style="position:absolute;left:0;right:0;bottom:0">%s</div>`+
		`<div class="stat" style="position:absolute;left:0;right:0;top:0;bottom:0;color:%s">%s</div></div>`,
		h, spark.String(), color, html.EscapeString(text))
}

func sparkline(points [][2]float64, w, h int, color string) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range points {
		if !math.IsNaN(p[1]) {
			lo, hi = min(lo, p[1]), max(hi, p[1])
		}
	}
	if math.IsInf(lo, 0) || len(points) < 2 {
		return ""
	}
	lo = min(lo, 0)
	if hi <= lo {
		hi = lo + 1
	}
	t0, t1 := points[0][0], points[len(points)-1][0]
	var path strings.Builder
	for i, p := range points {
		if math.IsNaN(p[1]) {
			continue
		}
		x := (p[0] - t0) / (t1 - t0) * float64(w)
		y := float64(h) - (p[1]-lo)/(hi-lo)*float64(h-2)
		cmd := "L"
		if i == 0 || path.Len() == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f,%.1f", cmd, x, y)
	}
	return fmt.Sprintf(`<svg width="%d" height="%d"><path d="%s L%d,%d L0,%d Z" fill="%s" fill-opacity="0.15" stroke="none"/>`+
		`<path d="%s" fill="none" stroke="%s" stroke-opacity="0.6" stroke-width="1"/></svg>`,
		w, h, path.String(), w, h, h, color, path.String(), color)
}

// drawChart draws a time series panel: axes, grid, one line per series, a legend.
func drawChart(p grafanaPanel, series []chartSeries, w, h int, from, to time.Time, note string) string {
	def := p.FieldConfig.Defaults
	const maxLegend = 12
	perRow := max(1, (w-16)/150)
	entries := min(len(series), maxLegend)
	legendRows := (entries + perRow - 1) / perRow
	if len(series) > maxLegend {
		legendRows = (entries + 1 + perRow - 1) / perRow
	}
	legendPx := legendRows*15 + 4
	svgH := h - legendPx
	const left, right, top, bottomPx = 58, 10, 6, 18
	plotW, plotH := float64(w-left-right), float64(svgH-top-bottomPx)

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, pt := range s.points {
			if !math.IsNaN(pt[1]) {
				lo, hi = min(lo, pt[1]), max(hi, pt[1])
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d">`, w, svgH)
	if math.IsInf(lo, 0) {
		if note == "" {
			note = "No data"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" style="font-size:13px">%s</text></svg>`, w/2, svgH/2, html.EscapeString(note))
		return b.String()
	}
	if def.Min != nil {
		lo = min(lo, *def.Min)
	}
	if hi <= lo {
		hi = lo + 1
	}
	ticks, step := niceTicks(lo, hi, 4)
	lo, hi = ticks[0], ticks[len(ticks)-1]
	if hi <= lo {
		hi = lo + step
	}
	t0, t1 := float64(from.Unix()), float64(to.Unix())
	xOf := func(ts float64) float64 { return left + (ts-t0)/(t1-t0)*plotW }
	yOf := func(v float64) float64 { return top + plotH - (v-lo)/(hi-lo)*plotH }

	for _, v := range ticks {
		y := yOf(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#2c3235"/>`, left, left+plotW, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, left-6, y+3, html.EscapeString(formatAxis(v, step, def.Unit)))
	}
	every := 30.0
	for _, e := range []float64{15, 30, 60, 120, 300} {
		every = e
		if plotW/((t1-t0)/e) >= 70 {
			break
		}
	}
	for ts := math.Ceil(t0/every) * every; ts <= t1; ts += every {
		x := xOf(ts)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f" stroke="#22252b"/>`, x, x, top, top+plotH)
		if x+26 > float64(w) {
			continue // the label would be cut at the panel's edge
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`, x, top+plotH+13, time.Unix(int64(ts), 0).UTC().Format("15:04:05"))
	}
	for i, s := range series {
		color := grafanaPalette[i%len(grafanaPalette)]
		var path strings.Builder
		pen := "M"
		for _, pt := range s.points {
			if math.IsNaN(pt[1]) {
				pen = "M"
				continue
			}
			fmt.Fprintf(&path, "%s%.1f,%.1f", pen, xOf(pt[0]), yOf(pt[1]))
			pen = "L"
		}
		if path.Len() > 0 {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.4"/>`, path.String(), color)
		}
	}
	b.WriteString(`</svg><div class="legend">`)
	for i, s := range series[:entries] {
		fmt.Fprintf(&b, `<div><span class="sw" style="background:%s"></span>%s</div>`, grafanaPalette[i%len(grafanaPalette)], html.EscapeString(s.label))
	}
	if len(series) > maxLegend {
		fmt.Fprintf(&b, `<div>+%d more</div>`, len(series)-maxLegend)
	}
	b.WriteString(`</div>`)
	return b.String()
}

// niceTicks are about n round values covering lo..hi, and their spacing.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	var ticks []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, v)
	}
	if ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks, step
}

// formatAxis labels an axis tick with the panel's unit, with as many decimals as the
// tick spacing needs.
func formatAxis(v, step float64, unit string) string {
	decimals := max(0, int(math.Ceil(-math.Log10(step))))
	return formatUnit(v, unit, &decimals, true)
}

// formatValue is a value as Grafana would show it in the unit.
func formatValue(v float64, unit string, decimals *int) string {
	return formatUnit(v, unit, decimals, false)
}

func formatUnit(v float64, unit string, decimals *int, axis bool) string {
	num := func(x float64, d int) string { return strconv.FormatFloat(x, 'f', d, 64) }
	auto := func(x float64) string {
		if decimals != nil && !axis {
			return num(x, *decimals)
		}
		switch a := math.Abs(x); {
		case a == 0 || a >= 100 || a == math.Trunc(a):
			return num(x, 0)
		case a >= 10:
			return num(x, 1)
		case a >= 1:
			return num(x, 2)
		default:
			return strconv.FormatFloat(x, 'g', 2, 64)
		}
	}
	switch unit {
	case "s":
		switch a := math.Abs(v); {
		case a == 0:
			return "0 s"
		case a < 1e-3:
			return auto(v*1e6) + " µs"
		case a < 1:
			return auto(v*1e3) + " ms"
		default:
			return auto(v) + " s"
		}
	case "bytes":
		for _, u := range []struct {
			div  float64
			name string
		}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
			if math.Abs(v) >= u.div {
				return auto(v/u.div) + " " + u.name
			}
		}
		return auto(v) + " B"
	}
	for _, u := range []struct {
		div  float64
		name string
	}{{1e9, " Bil"}, {1e6, " Mil"}, {1e3, " K"}} {
		if math.Abs(v) >= u.div {
			return auto(v/u.div) + u.name
		}
	}
	if axis && decimals != nil {
		return num(v, *decimals)
	}
	return auto(v)
}
