// emulate_launch(): a launch of the CUDA backend run lane by lane on the host.
//
// Exactly as the kernels split the work: every tile, every lane of its group,
// the lanes' sums added per tile, the tile sums stored or written as partial
// sums, then the second pass, all through the host/device functions of
// exec/cuda/tile_work.hpp. What only a GPU does (vector loads, shuffles,
// cub::BlockReduce) is left out; the sums are added in the same grouping.
// A learnable surrogate's parameter (DSQ's alpha) goes through the same
// stores, the second pass and the parameter pass into *g.dparameter.
#pragma once

#include <stableqat/exec/arguments.hpp>
#include <stableqat/exec/cuda/storage.hpp>
#include <stableqat/exec/cuda/tile_work.hpp>
#include <stableqat/exec/cuda/tiling.hpp>
#include <stableqat/quantizer.hpp>

#include <cstddef>
#include <limits>
#include <vector>

namespace stableqat::test {

namespace sq = stableqat;
namespace cd = stableqat::exec::cuda_detail;

/// Runs the forward (Backward = false) or backward launch of q over numel
/// elements of b; `aligned` as the front-end decides vector access.
template <bool Backward, class E, class T, class S>
void emulate_launch(sq::quantizer<T, S> const& q, std::size_t numel, cd::element_buffers<E, T> const& b,
                    cd::gradient_buffers<T> g, bool has_offsets, bool aligned) {
  const cd::launch_plan plan = cd::plan_launch(q.layout(), numel, sq::exec::chunk_elements<E>, aligned, Backward,
                                               /* resident blocks, irrelevant here */ 64);
  const cd::row_tiling& rows = plan.rows;
  const cd::column_tiling& columns = plan.columns;
  const cd::partial_sums_layout& partials = plan.partials;
  std::vector<double> partial_steps(plan.partial_count, std::numeric_limits<double>::quiet_NaN());
  std::vector<double> partial_offsets(has_offsets ? plan.partial_count : 0, std::numeric_limits<double>::quiet_NaN());
  constexpr bool with_parameter = Backward && cd::carries_parameter<S>;
  std::vector<double> partial_parameters(with_parameter ? plan.partial_count : 0,
                                         std::numeric_limits<double>::quiet_NaN());
  std::vector<double> step_parameters(with_parameter ? partials.steps : 0, std::numeric_limits<double>::quiet_NaN());
  g.partial_steps = partial_steps.data();
  g.partial_offsets = partial_offsets.data();
  g.partial_parameters = partial_parameters.data();
  g.step_parameters = step_parameters.data();
  sq::exec::visit_kernel<T>(q.grid(), has_offsets, [&](auto const& levels, auto with_offsets) {
    constexpr bool offsets = decltype(with_offsets)::value;
    if (!plan.by_column) {
      for (std::size_t tile = 0; tile < rows.tiles; ++tile) {
        sq::exec::term_sums total;
        for (unsigned lane = 0; lane < rows.group_lanes; ++lane) {
          const auto s = cd::row_tile_lane<Backward, offsets>(rows, b, tile, lane, levels, q.surrogate());
          total.step += s.step;
          total.offset += s.offset;
          total.parameter += s.parameter;
        }
        if constexpr (Backward) {
          cd::store_row_tile_sums<offsets, with_parameter>(rows, g, tile, total);
        }
      }
    } else {
      for (std::size_t tile = 0; tile < columns.tiles; ++tile) {
        for (unsigned column_lane = 0; column_lane < columns.column_lanes; ++column_lane) {
          cd::column_sums<E> total{};
          for (unsigned row_lane = 0; row_lane < columns.row_lanes; ++row_lane) {
            const auto s =
                cd::column_tile_lane<Backward, offsets>(columns, b, tile, row_lane, column_lane, levels, q.surrogate());
            for (std::size_t e = 0; e < sq::exec::chunk_elements<E>; ++e) {
              total.column[e].step += s.column[e].step;
              total.column[e].offset += s.column[e].offset;
              total.column[e].parameter += s.column[e].parameter;
            }
          }
          if constexpr (Backward) {
            cd::store_column_tile_sums<offsets, with_parameter>(columns, g, tile, column_lane, total);
          }
        }
      }
    }
    if constexpr (Backward) {
      if (plan.finalize_blocks > 0) {  // the second pass
        for (std::size_t k = 0; k < partials.steps; ++k) {
          double step = 0.0;
          double offset = 0.0;
          double parameter = 0.0;
          for (unsigned thread = 0; thread < cd::block_threads; ++thread) {
            step += cd::strided_partial_sum(g.partial_steps, partials, k, thread, cd::block_threads);
            if (offsets) {
              offset += cd::strided_partial_sum(g.partial_offsets, partials, k, thread, cd::block_threads);
            }
            if (with_parameter) {
              parameter += cd::strided_partial_sum(g.partial_parameters, partials, k, thread, cd::block_threads);
            }
          }
          g.dsteps[k] = static_cast<T>(g.grad_scale * step);
          if (offsets) {
            g.doffsets[k] = static_cast<T>(g.grad_scale * offset);
          }
          if (with_parameter) {
            g.step_parameters[k] = parameter;
          }
        }
      }
      if constexpr (with_parameter) {  // the parameter pass
        double total = 0.0;
        for (unsigned thread = 0; thread < cd::block_threads; ++thread) {
          total += cd::strided_parameter_sum(g.step_parameters, b.steps, partials.steps, thread, cd::block_threads);
        }
        *g.dparameter = static_cast<T>(total);
      }
    }
  });
}

}  // namespace stableqat::test
