package audit

// Report is one audit of one config.
type Report struct {
	File     string    `json:"file"`
	Findings []Finding `json:"findings"`
	// Unused lists acceptances that cover no finding (stale entries).
	Unused    []string        `json:"unused_acceptances,omitempty"`
	Practices []PracticeGrade `json:"practices"`
	Score     int             `json:"score"`
	Grade     string          `json:"grade"`
}

// PracticeGrade is one practice's score (0-100), letter and counted
// findings by severity.
type PracticeGrade struct {
	Practice Practice       `json:"practice"`
	Score    int            `json:"score"`
	Grade    string         `json:"grade"`
	Findings map[string]int `json:"findings"`
}

// penalty is what the first finding of a rule takes from its practice's
// 100 points; each further finding of the same rule takes a quarter of
// it, up to twice it in all (a rule failing on every route is one
// mistake repeated, not many).
var penalty = map[Severity]int{Low: 2, Medium: 10, High: 25, Critical: 50}

// letters are the grades' lowest scores, best first.
var letters = []struct {
	min    int
	letter string
}{{95, "A"}, {85, "B"}, {70, "C"}, {50, "D"}, {0, "F"}}

// Letter is the grade of a score.
func Letter(score int) string {
	for _, l := range letters {
		if score >= l.min {
			return l.letter
		}
	}
	return "F"
}

// letterIndex is a grade's position (A 0 … F 4).
func letterIndex(g string) int {
	for i, l := range letters {
		if l.letter == g {
			return i
		}
	}
	return len(letters) - 1
}

// grade scores each practice from its counted findings, and the whole
// config: the mean of the eight scores, its letter at most one better
// than the worst practice's.
func (r *Report) grade() {
	r.Practices = nil
	total, worst := 0, 0
	for _, p := range Practices {
		g := practiceGrade(p, r.Findings)
		r.Practices = append(r.Practices, g)
		total += g.Score
		worst = max(worst, letterIndex(g.Grade))
	}
	r.Score = total / len(Practices)
	r.Grade = Letter(r.Score)
	if idx := letterIndex(r.Grade); idx < worst-1 {
		r.Grade = letters[worst-1].letter
	}
}

func practiceGrade(p Practice, fs []Finding) PracticeGrade {
	g := PracticeGrade{Practice: p, Findings: map[string]int{}}
	taken := map[string]int{} // by rule
	lost := 0
	for _, f := range fs {
		if f.Practice != p || !f.Counts() {
			continue
		}
		g.Findings[f.Severity.String()]++
		full := penalty[f.Severity]
		step := full
		if taken[f.Rule] > 0 {
			step = max(1, full/4)
		}
		step = min(step, 2*full-taken[f.Rule])
		taken[f.Rule] += step
		lost += step
	}
	g.Score = max(0, 100-lost)
	g.Grade = Letter(g.Score)
	return g
}

// Practice returns the grade of practice p.
func (r *Report) Practice(p Practice) PracticeGrade {
	for _, g := range r.Practices {
		if g.Practice == p {
			return g
		}
	}
	return PracticeGrade{Practice: p}
}
