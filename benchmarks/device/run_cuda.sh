#!/usr/bin/env bash
# Device run: restore the float16-packed weights to float32 into a private cache, then the CUDA benchmarks.
set -u
export LATENTLAB_CACHE=$PWD/.gpu/cache PYTHONUNBUFFERED=1 PY=${PY:-python3}
DEV=${DEV:-cuda}; OUT=${OUT:-/tmp/out}; mkdir -p $OUT; R=${R:-5}; CK=${CK:-5,10,20,30}
$PY benchmarks/device/pack_weights.py restore .gpu/ffhq-mobile.f16.safetensors $LATENTLAB_CACHE/models/ffhq-mobile.safetensors
cp .gpu/ffhq-mobile.json $LATENTLAB_CACHE/models/
$PY benchmarks/device/pack_weights.py restore .gpu/vgg.f16.safetensors $LATENTLAB_CACHE/pypi/stlpips-pytorch-0.0.2/stlpips_pytorch/weights/vST0.0/vgg_shift_tolerant.pth
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; $PY -c "import torch;print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), 'cudnn.allow_tf32', torch.backends.cudnn.allow_tf32, 'matmul tf32', torch.backends.cuda.matmul.allow_tf32)") 2>&1 | tee -a $OUT/log.txt
BP="$PY benchmarks/bench_projection.py --device $DEV"
Q="--models '' --quality --photos .gpu/photos --presets paper --checkpoints $CK --budget 600 ${NS:+--num-steps $NS}"
eval timeout 150 $BP $Q --quality-networks ffhq-mobile --photos-limit ${NPH:-2} --json $OUT/q_mobile_fp32.json 2>&1 | tee -a $OUT/log.txt
eval timeout 100 $BP $Q --quality-networks ${QN2:-stylegan2-f-1024} --photos-limit 1 --json $OUT/q_f1024_fp32.json 2>&1 | tee -a $OUT/log.txt
timeout 150 $BP --models ${MODELS:-stylegan2-f-1024,ffhq-mobile,stylegan2-f-256} --repeats $R --bf16 --json $OUT/speed.json 2>&1 | tee -a $OUT/log.txt
timeout 100 $PY benchmarks/bench_generators.py --devices $DEV --batches ${BATCHES:-1,4,16} --models ${GMODELS:-ffhq-mobile,stylegan2-f-256,stylegan2-f-512,stylegan2-f-1024} --repeats $R --json $OUT/gen.json 2>&1 | tee -a $OUT/log.txt
eval timeout 100 $BP $Q --quality-networks ffhq-mobile,${QN2:-stylegan2-f-1024} --photos-limit 1 --precision bf16 --json $OUT/q_bf16.json 2>&1 | tee -a $OUT/log.txt
timeout 80 $BP --models ${MODELS:-stylegan2-f-1024,ffhq-mobile} --repeats $R --batch 4 --json $OUT/speed_b4.json 2>&1 | tee -a $OUT/log.txt
echo ALLDONE
