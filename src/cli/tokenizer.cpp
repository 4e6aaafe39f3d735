// herd tokenizer train|encode|decode: SentencePiece models for `herd prepare text`.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "data/text/input_files.h"
#include "data/text/tokenizer.h"

namespace herd::cli {
namespace {

struct TrainArgs {
  std::vector<std::string> inputs;
  int64_t vocab_size = 0;
  std::string model_type = "bpe";
  std::string out;
  data::TokenizerTrainOptions options;
};

void add_train_cmd(CLI::App& parent) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = parent.add_subcommand("train", "Train a SentencePiece model on text/jsonl files");
  cmd->add_option("--input", args->inputs,
                  "Input files (.txt, .jsonl, optionally .zst/.gz), directories or quoted globs "
                  "(as for prepare text)")
      ->required();
  cmd->add_option("--vocab-size", args->vocab_size, "Vocabulary size incl. pad/unk/bos/eos")
      ->required();
  cmd->add_option("--model-type", args->model_type, "bpe or unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Output prefix: writes PREFIX.model and PREFIX.vocab")
      ->required();
  cmd->add_option("--doc-delimiter", args->options.source.doc_delimiter,
                  "Line separating documents in text files (empty: one document per file)");
  cmd->add_option("--field,--json-field", args->options.source.json_field,
                  "String field holding the document in .jsonl/.json lines")
      ->capture_default_str();
  cmd->add_flag("--skip-bad-lines", args->options.source.skip_bad_lines,
                "Count and skip JSON lines that do not parse or lack the field (default: error)");
  cmd->add_option("--max-sentences", args->options.max_sentences,
                  "Train on at most the first N sentences (0: all)")
      ->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "SentencePiece random seed")->capture_default_str();
  cmd->add_option("--threads", args->options.num_threads,
                  "Trainer threads (the model depends on this count)")
      ->capture_default_str();
  cmd->footer(
      "Example:\n"
      "  herd tokenizer train --input /usr/share/games/fortunes/fortunes --doc-delimiter % \\\n"
      "      --vocab-size 512 --model-type bpe --out data/tok/fortunes");
  cmd->callback([args] {
    data::train_tokenizer(data::expand_inputs(args->inputs), args->vocab_size, args->model_type,
                          args->out, args->options);
  });
}

void add_encode_cmd(CLI::App& parent) {
  auto model = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto pieces = std::make_shared<bool>(false);
  auto* cmd = parent.add_subcommand("encode", "Print the token ids of a text");
  cmd->add_option("--model", *model, "SentencePiece .model file")->required();
  cmd->add_option("--text", *text, "Text to encode")->required();
  cmd->add_flag("--pieces", *pieces, "Print id:piece pairs");
  cmd->footer("Example:\n  herd tokenizer encode --model data/tok/fortunes.model --text 'Hello'");
  cmd->callback([model, text, pieces] {
    auto tok = data::Tokenizer::load(*model);
    auto ids = tok.encode(*text);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) std::cout << ' ';
      std::cout << ids[i];
      if (*pieces) std::cout << ':' << tok.piece(ids[i]);
    }
    std::cout << '\n';
  });
}

void add_decode_cmd(CLI::App& parent) {
  auto model = std::make_shared<std::string>();
  auto ids = std::make_shared<std::vector<int>>();
  auto* cmd = parent.add_subcommand("decode", "Print the text of token ids");
  cmd->add_option("--model", *model, "SentencePiece .model file")->required();
  cmd->add_option("--ids", *ids, "Token ids")->required();
  cmd->footer("Example:\n  herd tokenizer decode --model data/tok/fortunes.model --ids 5 6 7");
  cmd->callback([model, ids] {
    auto tok = data::Tokenizer::load(*model);
    std::cout << tok.decode(*ids) << '\n';
  });
}

}  // namespace

void add_tokenizer(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenizer", "Train and use SentencePiece tokenizers");
  cmd->require_subcommand(1);
  cmd->footer(
      "Example:\n"
      "  herd tokenizer train --input corpus.txt --vocab-size 512 --model-type bpe --out tok\n"
      "  herd tokenizer encode --model tok.model --text 'Hello'");
  add_train_cmd(*cmd);
  add_encode_cmd(*cmd);
  add_decode_cmd(*cmd);
}

}  // namespace herd::cli
