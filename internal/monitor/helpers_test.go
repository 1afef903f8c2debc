package monitor

import (
	"math"
	"math/rand/v2"
	"strings"
)

var synthLabels = []string{"ham", "spam", "news"}

// synthWorld generates classify traffic: each label has its own words,
// shared filler words follow a Zipf-like law, lengths vary, and a model
// outputs softmax probabilities that favour the true label; embeddings
// are 6-dimensional class centroids plus noise. shift > 0 moves traffic:
// new vocabulary, longer texts, and a label mix tilted toward "spam".
type synthWorld struct {
	shift float64
}

func (s synthWorld) words(label int, rng *rand.Rand) []string {
	topic := [][]string{
		strings.Fields("meeting lunch family weekend project report friday call thanks notes"),
		strings.Fields("winner free prize click offer viagra cash credit urgent deal"),
		strings.Fields("election market storm minister league vote economy police court weather"),
	}
	filler := strings.Fields("the of and to a in is it you that he was for on are with as i his they be at one have this from")
	novel := strings.Fields("crypto wallet nft token airdrop metaverse blockchain staking yield defi")
	n := 8 + rng.IntN(20)
	if s.shift > 0 {
		n += int(20 * s.shift)
	}
	out := make([]string, n)
	for i := range out {
		u := rng.Float64()
		switch {
		case s.shift > 0 && u < 0.25*s.shift:
			out[i] = novel[rng.IntN(len(novel))]
		case u < 0.45:
			out[i] = topic[label][rng.IntN(len(topic[label]))]
		default:
			r := int(math.Floor(math.Pow(rng.Float64(), 2) * float64(len(filler))))
			out[i] = filler[r]
		}
	}
	return out
}

func (s synthWorld) sample(rng *rand.Rand) Sample {
	label := rng.IntN(3)
	if s.shift > 0 && rng.Float64() < 0.3*s.shift {
		label = 1
	}
	text := strings.Join(s.words(label, rng), " ")
	logits := make([]float64, 3)
	var z float64
	for i := range logits {
		logits[i] = rng.NormFloat64()
		if i == label {
			logits[i] += 2.2
		}
		z += math.Exp(logits[i])
	}
	probs := make([]float64, 3)
	for i := range probs {
		probs[i] = math.Exp(logits[i]) / z
	}
	emb := make([]float64, 6)
	for i := range emb {
		emb[i] = rng.NormFloat64() * 0.5
	}
	emb[label] += 1.5
	if s.shift > 0 {
		emb[5] += 1.5 * s.shift
	}
	return Sample{Text: text, Label: synthLabels[label], Probs: probs, Embedding: emb}
}

func (s synthWorld) samples(seed uint64, n int) []Sample {
	rng := rand.New(rand.NewPCG(seed, 17))
	out := make([]Sample, n)
	for i := range out {
		out[i] = s.sample(rng)
	}
	return out
}

func (s synthWorld) requests(seed uint64, n int, withEmbeddings bool) []Request {
	var out []Request
	for _, x := range s.samples(seed, n) {
		r := Request{Text: x.Text, Probs: x.Probs, Label: x.Label}
		if withEmbeddings {
			r.Embedding = x.Embedding
		}
		out = append(out, r)
	}
	return out
}

func synthProfile(tb interface{ Fatal(...any) }, withEmbeddings bool) *Profile {
	w := synthWorld{}
	var train []string
	for _, s := range w.samples(1, 3000) {
		train = append(train, s.Text)
	}
	val := w.samples(2, 1000)
	if !withEmbeddings {
		for i := range val {
			val[i].Embedding = nil
		}
	}
	p, err := BuildProfile(synthLabels, train, val, ProfileOptions{MaxEmbeddings: 100})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
