package basemodel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// ImportOptions configures Import. Zero limits take the defaults below.
type ImportOptions struct {
	Name          string       // base model name recorded in the manifest (required)
	MaxTotalBytes int64        // all entries together; default 256 GiB
	MaxFileBytes  int64        // one entry; default 64 GiB
	MaxJSONBytes  int64        // one JSON file (config, tokenizer, index); default 64 MiB
	MaxFiles      int          // entries; default 1024
	Logger        *slog.Logger // default: discard
}

func (o *ImportOptions) defaults() {
	if o.MaxTotalBytes <= 0 {
		o.MaxTotalBytes = 256 << 30
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 64 << 30
	}
	if o.MaxJSONBytes <= 0 {
		o.MaxJSONBytes = 64 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// jsonFiles are the small JSON files Import keeps and checks are objects.
var jsonFiles = map[string]bool{
	"config.json": true, "tokenizer.json": true, "tokenizer_config.json": true,
	"generation_config.json": true, "special_tokens_map.json": true, safetensors.IndexName: true,
}

// importer is the state of one Import call.
type importer struct {
	opts    ImportOptions
	sink    Sink
	seen    map[string]bool
	total   int64
	files   []File
	skipped []string

	config, tokenizer []byte
	cfg               engine.Config
	index             *safetensors.Index
	shards            map[string][]tensorRecord
}

// Import reads a model folder from files, validates it, streams the kept
// files into sink and returns the manifest. Every error is errs.Invalid (or
// the sink's own error) and names the entry, tensor or field at fault.
func Import(ctx context.Context, files FileSource, opts ImportOptions, sink Sink) (*Manifest, error) {
	opts.defaults()
	if strings.TrimSpace(opts.Name) == "" {
		return nil, errs.Invalid("import base model: a name is required")
	}
	im := &importer{opts: opts, sink: sink, seen: map[string]bool{}, shards: map[string][]tensorRecord{}}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := files.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("import base model %q: %w", opts.Name, err)
		}
		if err := im.entry(ctx, e); err != nil {
			return nil, fmt.Errorf("import base model %q: %w", opts.Name, err)
		}
	}
	m, err := im.finish()
	if err != nil {
		return nil, fmt.Errorf("import base model %q: %w", opts.Name, err)
	}
	opts.Logger.Info("base model imported", "name", m.Name, "arch", m.Arch,
		"params", m.Params, "fingerprint", m.Fingerprint, "files", len(m.Files))
	return m, nil
}

func (im *importer) entry(ctx context.Context, e Entry) error {
	if err := ValidName(e.Name); err != nil {
		return err
	}
	if im.seen[e.Name] {
		return errs.Invalid("entry %q appears twice", e.Name)
	}
	im.seen[e.Name] = true
	if len(im.seen) > im.opts.MaxFiles {
		return errs.Invalid("entry %q: more than %d files", e.Name, im.opts.MaxFiles)
	}
	if e.Size < 0 || e.Size > im.opts.MaxFileBytes {
		return errs.Invalid("entry %q: size %d exceeds the per-file limit of %d bytes", e.Name, e.Size, im.opts.MaxFileBytes)
	}
	im.total += e.Size
	if im.total > im.opts.MaxTotalBytes {
		return errs.Invalid("entry %q: the folder exceeds the total limit of %d bytes", e.Name, im.opts.MaxTotalBytes)
	}
	switch {
	case jsonFiles[e.Name]:
		return im.jsonEntry(ctx, e)
	case strings.HasSuffix(e.Name, ".safetensors"):
		return im.safetensorsEntry(ctx, e)
	}
	im.opts.Logger.Debug("skipping file", "name", e.Name, "size", e.Size)
	im.skipped = append(im.skipped, e.Name)
	_, err := io.Copy(io.Discard, e.Body)
	return err
}

func (im *importer) jsonEntry(ctx context.Context, e Entry) error {
	if e.Size > im.opts.MaxJSONBytes {
		return errs.Invalid("entry %q: %d bytes exceeds the %d-byte limit for JSON files", e.Name, e.Size, im.opts.MaxJSONBytes)
	}
	src, err := io.ReadAll(io.LimitReader(e.Body, e.Size+1))
	if err != nil {
		return fmt.Errorf("entry %q: %w", e.Name, err)
	}
	if int64(len(src)) != e.Size {
		return errs.Invalid("entry %q: read %d bytes, declared %d", e.Name, len(src), e.Size)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(src, &obj); err != nil || obj == nil {
		return errs.Invalid("%s: not a JSON object: %v", e.Name, err)
	}
	switch e.Name {
	case "config.json":
		if im.cfg, err = hfconfig.Parse(src); err != nil {
			return err
		}
		im.config = src
	case "tokenizer.json":
		if _, ok := obj["model"]; !ok {
			return errs.Invalid("tokenizer.json: field \"model\" is missing")
		}
		im.tokenizer = src
	case safetensors.IndexName:
		if im.index, err = safetensors.ParseIndex(src); err != nil {
			return err
		}
	}
	return im.put(ctx, e.Name, bytes.NewReader(src))
}

func (im *importer) safetensorsEntry(ctx context.Context, e Entry) error {
	scan := newScanReader(e.Name, e.Body, e.Size)
	if err := im.put(ctx, e.Name, scan); err != nil {
		if scan.err != nil {
			return scan.err
		}
		return err
	}
	recs, err := scan.records()
	if err != nil {
		return err
	}
	im.shards[e.Name] = recs
	return nil
}

func (im *importer) put(ctx context.Context, name string, r io.Reader) error {
	d, n, err := im.sink.Put(ctx, r)
	if err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	im.files = append(im.files, File{Name: name, Digest: d, Size: n})
	return nil
}

// finish runs the checks that need the whole folder and builds the manifest.
func (im *importer) finish() (*Manifest, error) {
	switch {
	case im.config == nil:
		return nil, errs.Invalid("config.json is missing")
	case im.tokenizer == nil:
		return nil, errs.Invalid("tokenizer.json is missing")
	case len(im.shards) == 0:
		return nil, errs.Invalid("no *.safetensors weights found")
	}
	tensors, err := im.collectTensors()
	if err != nil {
		return nil, err
	}
	params, dtype, err := checkTensors(im.cfg, tensors)
	if err != nil {
		return nil, err
	}
	all := make([]tensorRecord, 0, len(tensors))
	for _, t := range tensors {
		all = append(all, t)
	}
	sortFiles(im.files)
	sortStrings(im.skipped)
	return &Manifest{
		Fingerprint: fingerprint(sha256.Sum256(im.config), sha256.Sum256(im.tokenizer), all),
		Name:        im.opts.Name,
		Arch:        im.cfg.Arch,
		Params:      params,
		Config:      im.cfg,
		Dtype:       dtype,
		Files:       im.files,
		Skipped:     im.skipped,
	}, nil
}

// collectTensors merges the shards, checking them against the index.
func (im *importer) collectTensors() (map[string]tensorRecord, error) {
	names := sortedKeys(im.shards)
	if im.index == nil && len(names) > 1 {
		return nil, errs.Invalid("%d *.safetensors files (%s) but no %s naming the shards",
			len(names), strings.Join(names, ", "), safetensors.IndexName)
	}
	if im.index != nil {
		listed := im.index.Shards()
		if strings.Join(listed, "\x00") != strings.Join(names, "\x00") {
			return nil, errs.Invalid("%s lists shards [%s] but the folder has [%s]",
				safetensors.IndexName, strings.Join(listed, ", "), strings.Join(names, ", "))
		}
	}
	out := map[string]tensorRecord{}
	for _, file := range names {
		for _, t := range im.shards[file] {
			if prev, dup := out[t.Info.Name]; dup {
				return nil, errs.Invalid("tensor %q is in both %s and %s", t.Info.Name, prev.File, file)
			}
			if im.index != nil && im.index.WeightMap[t.Info.Name] != file {
				return nil, errs.Invalid("%s: tensor %q is not listed for this shard in %s", file, t.Info.Name, safetensors.IndexName)
			}
			out[t.Info.Name] = t
		}
	}
	if im.index != nil {
		for _, name := range sortedKeys(im.index.WeightMap) {
			if _, ok := out[name]; !ok {
				return nil, errs.Invalid("%s lists tensor %q in %s, which does not hold it",
					safetensors.IndexName, name, im.index.WeightMap[name])
			}
		}
	}
	return out, nil
}
