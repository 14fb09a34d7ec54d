import type { KubeClient } from '../core/kube/client.ts';

export interface UserInfo {
  username: string;
  groups: string[];
}

/** Who the API server says we are (SelfSubjectReview). */
export async function whoAmI(client: KubeClient): Promise<UserInfo> {
  const review = await client.post<{ status?: { userInfo?: { username?: string; groups?: string[] } } }>('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  return { username: review.status?.userInfo?.username ?? '(unknown)', groups: review.status?.userInfo?.groups ?? [] };
}
