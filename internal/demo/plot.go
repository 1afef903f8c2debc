package demo

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"strings"

	"github.com/tailor-ml/tailor/api"
)

// series is one polyline of the plot: points (request index, value).
type series struct {
	name   string
	color  string
	dashed bool
	x, y   []float64
}

// marker is a vertical line at a request index.
type marker struct {
	at    int
	label string
	color string
}

// panel is one chart: its series share the y range [lo, hi].
type panel struct {
	title  string
	lo, hi float64
	series []series
	// rule is a horizontal reference line (NaN for none).
	rule      float64
	ruleLabel string
}

// driftPlot builds act two's plot: served accuracy (true labels, per 100
// requests) and CBPE's estimate per monitor window on top, the monitor's
// strongest alarm ratio per window below (1 is the alarm threshold), with
// the switch to period 2, the first drift and the hot swap marked.
func driftPlot(log []served, ws []api.MonitorWindow, switchAt int) (panels []panel, markers []marker) {
	acc := series{name: "accuracy (true labels, per 100 requests)", color: "#1f5fa8"}
	for _, r := range windowAccuracy(log, 100) {
		acc.x = append(acc.x, float64(r.from+r.to)/2)
		acc.y = append(acc.y, r.acc)
	}
	est := series{name: "CBPE estimated accuracy (per monitor window)", color: "#b35c00", dashed: true}
	ratio := series{name: "strongest detector / its threshold", color: "#8a1c1c"}
	ends := windowEnds(ws)
	firstDrift := -1
	for i, w := range ws {
		var res struct {
			Detectors []struct {
				Name      string   `json:"name"`
				Statistic float64  `json:"statistic"`
				Threshold float64  `json:"threshold"`
				Adjusted  *float64 `json:"adjusted_pvalue"`
				Skipped   string   `json:"skipped"`
			} `json:"detectors"`
			Performance struct {
				Expected float64 `json:"expected_accuracy"`
			} `json:"performance"`
		}
		if json.Unmarshal(w.Result, &res) != nil {
			continue
		}
		x := float64(ends[i]) - float64(w.Count)/2
		est.x, est.y = append(est.x, x), append(est.y, res.Performance.Expected)
		r := 0.0
		for _, d := range res.Detectors {
			switch {
			case d.Skipped != "":
			case d.Adjusted != nil && d.Threshold > 0 && d.Threshold < 1:
				// A test: how far its adjusted p-value is below the level, on a log scale.
				p := math.Max(*d.Adjusted, 1e-300)
				r = math.Max(r, math.Log(p)/math.Log(d.Threshold))
			case d.Threshold > 0:
				r = math.Max(r, d.Statistic/d.Threshold)
			}
		}
		ratio.x, ratio.y = append(ratio.x, x), append(ratio.y, math.Min(r, 4))
		if w.Drifted && firstDrift < 0 {
			firstDrift = i
		}
	}
	panels = []panel{
		{title: "served accuracy", lo: 0.5, hi: 1, series: []series{acc, est}, rule: math.NaN()},
		{title: "drift: strongest detector relative to its threshold (clipped at 4)", lo: 0, hi: 4, series: []series{ratio}, rule: 1, ruleLabel: "alarm"},
	}
	markers = append(markers, marker{at: switchAt, label: "period 2 starts", color: "#555"})
	if firstDrift >= 0 {
		markers = append(markers, marker{at: ends[firstDrift], label: "first drift", color: "#8a1c1c"})
	}
	for i := 1; i < len(log); i++ {
		if log[i].version != log[i-1].version {
			markers = append(markers, marker{at: i, label: "hot swap to " + log[i].version, color: "#1d7a35"})
			break
		}
	}
	return panels, markers
}

// writeSVG draws panels stacked over a shared x axis of n requests.
func writeSVG(path, title string, n int, panels []panel, markers []marker) error {
	const width, left, right, top, ph, gap = 960.0, 60.0, 20.0, 40.0, 220.0, 70.0
	height := top + float64(len(panels))*(ph+gap) + 20
	pw := width - left - right
	xs := func(x float64) float64 { return left + pw*x/math.Max(float64(n), 1) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for pi, p := range panels {
		y0 := top + float64(pi)*(ph+gap)
		ys := func(v float64) float64 { return y0 + ph - ph*(math.Min(math.Max(v, p.lo), p.hi)-p.lo)/(p.hi-p.lo) }
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-8, html.EscapeString(p.title))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, pw, ph)
		for i := 0; i <= 4; i++ {
			v := p.lo + (p.hi-p.lo)*float64(i)/4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.2g</text>`+"\n", left-6, ys(v)+4, v)
		}
		for i := 0; i <= 10; i++ {
			x := float64(n) * float64(i) / 10
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%.0f</text>`+"\n", xs(x), y0+ph+16, x)
		}
		if !math.IsNaN(p.rule) {
			fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#8a1c1c" stroke-dasharray="2,3"/><text x="%.0f" y="%.1f" fill="#8a1c1c">%s</text>`+"\n",
				left, left+pw, ys(p.rule), ys(p.rule), left+pw-40, ys(p.rule)-4, html.EscapeString(p.ruleLabel))
		}
		for _, m := range markers {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="%s"/>`+"\n", xs(float64(m.at)), xs(float64(m.at)), y0, y0+ph, m.color)
			if pi == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="%s">%s</text>`+"\n", xs(float64(m.at))+3, y0+14, m.color, html.EscapeString(m.label))
			}
		}
		for si, s := range p.series {
			pts := make([]string, len(s.x))
			for i := range s.x {
				pts[i] = fmt.Sprintf("%.1f,%.1f", xs(s.x[i]), ys(s.y[i]))
			}
			dash := ""
			if s.dashed {
				dash = ` stroke-dasharray="6,4"`
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", left+10, y0+ph-10-14*float64(si), s.color, html.EscapeString(s.name))
		}
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">request</text>`+"\n", left+pw/2, height-6)
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
