// herd prepare text: tokenize documents into train/val shards and a manifest.
#include <memory>

#include "cli/commands.h"
#include "data/text/prepare.h"

namespace herd::cli {

void add_prepare(CLI::App& app) {
  auto* cmd = app.add_subcommand("prepare", "Turn corpora into token shards for training");
  cmd->require_subcommand(1);
  cmd->footer(
      "Example:\n"
      "  herd prepare text --input corpus.txt --tokenizer tok.model --out data/corpus");

  auto opt = std::make_shared<data::PrepareOptions>();
  auto* text = cmd->add_subcommand(
      "text", "Tokenize .txt/.jsonl(.zst/.gz) documents (EOS after each) into shards");
  text->add_option("--input", opt->inputs,
                   "Input files, directories (their *.txt/*.jsonl/*.json[.zst|.gz] files, "
                   "recursively) or quoted globs ('c4/*.json.gz'); read in the order given")
      ->required();
  text->add_option("--tokenizer", opt->tokenizer, "SentencePiece .model file")->required();
  text->add_option("--out", opt->out_dir, "Output directory (shards + manifest.yaml)")->required();
  text->add_option("--val-fraction", opt->val_fraction, "Share of documents for validation")
      ->capture_default_str();
  text->add_option("--shard-tokens", opt->shard_tokens, "Tokens per shard")->capture_default_str();
  text->add_option("--doc-delimiter", opt->doc_delimiter,
                   "Line separating documents in text files (empty: one document per file)");
  text->add_option("--field,--json-field", opt->json_field,
                   "String field holding the document in .jsonl/.json lines")
      ->capture_default_str();
  text->add_flag("--skip-bad-lines", opt->skip_bad_lines,
                 "Count and skip JSON lines that do not parse or lack the field (default: error)");
  text->add_option("--threads", opt->threads,
                   "Tokenizer threads (0: all cores); the output does not depend on it")
      ->capture_default_str();
  text->add_option("--seed", opt->seed, "Seed of the train/val split")->capture_default_str();
  text->footer(
      "Example:\n"
      "  herd prepare text --input /usr/share/games/fortunes/fortunes --doc-delimiter % \\\n"
      "      --tokenizer data/tok/fortunes.model --out data/fortunes --val-fraction 0.05\n"
      "  herd prepare text --input 'pile/train/*.jsonl.zst' --tokenizer tok.model \\\n"
      "      --out data/pile --shard-tokens 100000000 --val-fraction 0.0005\n"
      "  herd prepare text --input c4/en --field text --skip-bad-lines --tokenizer tok.model \\\n"
      "      --out data/c4");
  text->callback([opt] { data::prepare_text(*opt); });
  add_prepare_images(*cmd);
}

}  // namespace herd::cli
