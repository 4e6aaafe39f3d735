// BERT's special tokens in every tokenizer herd trains: [CLS] [SEP] [MASK] at ids 4, 5, 6
// (after pad, unk, bos, eos), and a one-line error for tokenizers trained before them.
#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include <filesystem>

#include "core/error.h"
#include "data/text/tokenizer.h"
#include "fixtures.h"

namespace herd {
namespace {

TEST(TokenizerSpecial, EveryTrainedTokenizerReservesClsSepMask) {
  auto tok = data::Tokenizer::load(test::fortunes_dataset() + "/tokenizer.model");
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.eos_id(), 3);
  EXPECT_EQ(tok.cls_id(), data::kClsId);
  EXPECT_EQ(tok.sep_id(), data::kSepId);
  EXPECT_EQ(tok.mask_id(), data::kMaskId);
  EXPECT_EQ(tok.piece(4), "[CLS]");
  EXPECT_EQ(tok.piece(5), "[SEP]");
  EXPECT_EQ(tok.piece(6), "[MASK]");
  // Ordinary text never produces them, and they decode as written.
  for (int id : tok.encode("An apple a day keeps the doctor away.\n")) EXPECT_GT(id, 6);
  EXPECT_EQ(tok.decode({4, 5, 6}), "[CLS][SEP][MASK]");
}

TEST(TokenizerSpecial, OldTokenizerWithoutThemIsAOneLineError) {
  // A model trained the way herd did before: reserved ids 0-3 only.
  const std::string dir = test::temp_dir("old-tok");
  const std::string prefix = dir + "/old";
  const std::string args = "--input=/usr/share/games/fortunes/fortunes --model_prefix=" + prefix +
                           " --vocab_size=512 --model_type=bpe --pad_id=0 --unk_id=1 --bos_id=2"
                           " --eos_id=3 --byte_fallback=true --minloglevel=2";
  ASSERT_TRUE(sentencepiece::SentencePieceTrainer::Train(args).ok());
  auto tok = data::Tokenizer::load(prefix + ".model");
  EXPECT_GT(tok.vocab_size(), 6);
  for (auto accessor :
       {&data::Tokenizer::cls_id, &data::Tokenizer::sep_id, &data::Tokenizer::mask_id}) {
    try {
      (tok.*accessor)();
      ADD_FAILURE() << "an old tokenizer returned a special id";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(prefix + ".model: tokenizer has no ["), std::string::npos) << msg;
      EXPECT_NE(msg.find("retrain it with herd tokenizer train"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace herd
