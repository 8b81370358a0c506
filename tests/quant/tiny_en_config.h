#pragma once
// tiny.en's dimensions (n_vocab 51864, d 384, 4+4 layers, FFN 1536), for quant tests that resolve plans over the
// real Whisper spec table without loading the weights.
#include "quasr/models/whisper.h"

namespace quasr::quant::testing {

inline models::WhisperConfig tiny_en_config() {
  models::WhisperConfig c;
  c.n_audio_state = c.n_text_state = 384;
  c.n_audio_head = c.n_text_head = 6;
  c.n_audio_layer = c.n_text_layer = 4;
  c.n_vocab = 51864;
  c.n_audio_ffn = c.n_text_ffn = 1536;
  return c;
}

}  // namespace quasr::quant::testing
