# Per-ISA compilation. A source whose name ends in _<isa>.cpp is compiled with that ISA's flags and nothing else
# is: the shipped binary runs on any x86-64, and kernels are chosen at run time (core/cpu_features.h).
# Each ISA file defines its kernels in a namespace of its own (e.g. quasr::kernels::avx512), so the same inline
# helper compiled with different flags never meets another copy at link time (the ODR trap ruy's path.h explains).
set(QUASR_ISA_FLAGS_avx2       "-mavx2;-mfma;-mf16c;-mbmi2")
set(QUASR_ISA_FLAGS_avx512     "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mfma;-mf16c;-mbmi2")
set(QUASR_ISA_FLAGS_avx512vnni "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512vnni;-mfma;-mf16c;-mbmi2")
set(QUASR_ISA_FLAGS_avx512bf16 "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512bf16;-mfma;-mf16c;-mbmi2")
set(QUASR_ISA_FLAGS_avxvnni    "-mavx2;-mfma;-mf16c;-mavxvnni;-mbmi2")
set(QUASR_ISA_FLAGS_amx        "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512vnni;-mamx-tile;-mamx-int8;-mamx-bf16;-mfma;-mf16c")

function(quasr_apply_isa_flags sources)
  foreach(src ${sources})
    foreach(isa avx2 avx512 avx512vnni avx512bf16 avxvnni amx)
      if(src MATCHES "_${isa}\\.cpp$")
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${QUASR_ISA_FLAGS_${isa}}")
      endif()
    endforeach()
  endforeach()
endfunction()
