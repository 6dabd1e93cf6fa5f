// Unit tests of genmarl::torch's pieces that need no export (built with GENMARL_WITH_TORCH).
// Export-level parity (C++ vs Python) lives in tests/test_export.py, which drives torch_tool.cpp.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "genmarl/torch/package.hpp"
#include "genmarl/torch/world_model.hpp"

namespace gt = genmarl::torch;

namespace {

std::map<std::string, std::string> metadata() {
  return {{"genmarl.algo", "mappo"},
          {"genmarl.env", "simple_adversary"},
          {"genmarl.device", "cpu"},
          {"genmarl.genmarl_version", "0.1.0"},
          {"genmarl.torch_version", "2.13.0"},
          {"genmarl.env_params", "N=2.0;continuous_actions=1.0"},
          {"genmarl.groups", "adversary,agent"},
          {"genmarl.group.adversary", "1,8,discrete,5,0.0,4.0"},
          {"genmarl.group.agent", "2,10,continuous,5,0.0,1.0"}};
}

}  // namespace

TEST(ExportInfo, ParsesGroupsAndEnvArguments) {
  auto info = gt::ExportInfo::from_metadata(metadata(), "x.pt2");
  EXPECT_EQ(info.env, "simple_adversary");
  ASSERT_EQ(info.groups.size(), 2u);
  EXPECT_EQ(info.groups[1].name, "agent");
  EXPECT_EQ(info.groups[1].num_agents, 2);
  EXPECT_TRUE(info.groups[1].continuous);
  EXPECT_FLOAT_EQ(info.groups[1].high, 1.0f);
  EXPECT_EQ(info.num_agents(), 3);
  EXPECT_EQ(info.env_params.get_int("N"), 2);
  EXPECT_TRUE(info.env_params.get_bool("continuous_actions"));
}

TEST(ExportInfo, RejectsMalformedMetadata) {
  auto md = metadata();
  md.erase("genmarl.env");
  EXPECT_THROW(gt::ExportInfo::from_metadata(md, "x.pt2"), gt::ExportError);
  md = metadata();
  md["genmarl.group.agent"] = "2,10,sideways,5,0,1";
  EXPECT_THROW(gt::ExportInfo::from_metadata(md, "x.pt2"), gt::ExportError);
  md = metadata();
  md["genmarl.group.agent"] = "two,10,discrete,5,0,1";
  EXPECT_THROW(gt::ExportInfo::from_metadata(md, "x.pt2"), gt::ExportError);
  md = metadata();
  md["genmarl.env_params"] = "N";
  EXPECT_THROW(gt::ExportInfo::from_metadata(md, "x.pt2"), gt::ExportError);
  md = metadata();
  md["genmarl.groups"] = "adversary,ghost";
  EXPECT_THROW(gt::ExportInfo::from_metadata(md, "x.pt2"), gt::ExportError);
}

TEST(Package, MissingFileIsAnExportError) {
  EXPECT_THROW(gt::Package("/nonexistent/policy.pt2", "model", "policy"), gt::ExportError);
}

TEST(LambdaReturns, MatchesTheRecursionByHand) {
  // H = 2, one element: R1 = r1 + d1 v2; R0 = r0 + d0 ((1 - l) v1 + l R1)
  at::Tensor r = at::tensor({1.0f, 2.0f}), d = at::tensor({0.5f, 0.25f}), v = at::tensor({10.0f, 20.0f, 40.0f});
  at::Tensor out = gt::lambda_returns(r, v, d, 0.8);
  const float R1 = 2.0f + 0.25f * 40.0f;
  const float R0 = 1.0f + 0.5f * (0.2f * 20.0f + 0.8f * R1);
  EXPECT_FLOAT_EQ(out[1].item<float>(), R1);
  EXPECT_FLOAT_EQ(out[0].item<float>(), R0);
  EXPECT_THROW(gt::lambda_returns(r, r, d, 0.8), gt::ExportError);
}

TEST(MixValid, KeepsInvalidActionsMaskedAndMixesValidOnes) {
  at::Tensor logits = at::tensor({2.0f, 0.0f, -1e9f}).view({1, 3});
  at::Tensor valid = at::tensor({1, 1, 0}).to(at::kBool).view({1, 3});
  at::Tensor p = gt::mix_valid(logits, valid, 0.5).softmax(-1);
  const float s = std::exp(2.0f) / (std::exp(2.0f) + 1.0f);
  EXPECT_NEAR(p[0][0].item<float>(), 0.5f * s + 0.25f, 1e-6);
  EXPECT_NEAR(p[0][1].item<float>(), 0.5f * (1 - s) + 0.25f, 1e-6);
  EXPECT_EQ(p[0][2].item<float>(), 0.0f);
  EXPECT_TRUE(at::equal(gt::mix_valid(logits, valid, 0.0), logits));
}

TEST(CategoricalSampler, CpuDrawsFollowTheSoftmaxAndRepeatForASeed) {
  at::Tensor logits = at::tensor({0.0f, 1.0f, 2.0f, -1e9f}).view({1, 4}).expand({40000, 4}).contiguous();
  gt::CategoricalSampler a(7), b(7);
  at::Tensor x = a.draw(logits), y = b.draw(logits);
  EXPECT_TRUE(at::equal(x, y));
  at::Tensor p = logits[0].softmax(-1);
  for (int k = 0; k < 4; ++k) {
    const double freq = (x == k).sum().item<double>() / 40000.0, pk = p[k].item<double>();
    EXPECT_NEAR(freq, pk, 4 * std::sqrt(pk * (1 - pk) / 40000.0) + 1e-9) << "class " << k;
  }
  EXPECT_FALSE(at::equal(x, a.draw(logits)));  // the stream advances
  EXPECT_TRUE(at::equal(a.draw(logits, /*mode=*/true), at::full({40000}, 2, at::kLong)));
}

TEST(CounterNoise, UniformsAndNormalsAreDeterministicWithTheRightMoments) {
  at::Tensor u = gt::counter_noise({100000}, false, 3, 1);
  EXPECT_TRUE(at::equal(u, gt::counter_noise({100000}, false, 3, 1)));
  EXPECT_FALSE(at::equal(u, gt::counter_noise({100000}, false, 3, 2)));
  EXPECT_GE(u.min().item<float>(), 0.0f);
  EXPECT_LE(u.max().item<float>(), 1.0f);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 0.005);
  at::Tensor n = gt::counter_noise({100001}, true, 3, 1);  // odd count: the last pair is cut
  EXPECT_NEAR(n.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(n.std().item<double>(), 1.0, 0.01);
  EXPECT_TRUE(n.isfinite().all().item<bool>());
}

TEST(MergeReset, OrsFlagsAndRejectsBadShapes) {
  at::Tensor fresh = at::tensor({1, 0, 0}).to(at::kBool);
  EXPECT_TRUE(at::equal(gt::merge_reset(fresh, at::Tensor(), "t"), fresh));
  EXPECT_TRUE(at::equal(gt::merge_reset(fresh, at::tensor({0, 1, 0}).to(at::kBool), "t"), at::tensor({1, 1, 0}).to(at::kBool)));
  EXPECT_THROW(gt::merge_reset(fresh, at::tensor({1, 0}).to(at::kBool), "t"), gt::ExportError);
  EXPECT_THROW(gt::merge_reset(fresh, at::tensor({1, 0, 0}), "t"), gt::ExportError);
}

TEST(SplitGroups, SlicesAgentsGroupByGroup) {
  auto info = gt::ExportInfo::from_metadata(metadata(), "x.pt2");
  at::Tensor joint = at::arange(6, at::kLong).view({2, 3});
  auto parts = gt::split_groups(info, joint);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_TRUE(at::equal(parts[0], at::tensor({0L, 3L}).view({2, 1})));
  EXPECT_TRUE(at::equal(parts[1], at::tensor({1L, 2L, 4L, 5L}).view({2, 2})));
}

TEST(CategoricalSampler, OneHotDrawsAreTheIndexDraws) {
  at::Tensor logits = at::randn({500, 16});
  gt::CategoricalSampler a(11), b(11);
  at::Tensor one_hot = a.draw_one_hot(logits);
  EXPECT_EQ(one_hot.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(one_hot, at::one_hot(b.draw(logits), 16).to(at::kFloat)));
  EXPECT_TRUE(at::equal(a.draw_one_hot(logits, /*mode=*/true), at::one_hot(logits.argmax(-1), 16).to(at::kFloat)));
}
